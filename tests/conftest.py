from __future__ import annotations

import contextlib
import os
import signal
import sys
import warnings
from dataclasses import dataclass
from types import FrameType
from typing import Callable, Iterator

import numpy as np
import pytest

import cnnc
from cnnc.dsl.document import load_text


def net(body: str, input_shape: str = "[3, 8, 8]", extra: str = "") -> cnnc.compiler.ir.Graph:
    """Build a small network from a `layers:` body (and optional extra top-level YAML)."""
    return cnnc.build(doc(body, input_shape, extra))


def doc(body: str, input_shape: str = "[3, 8, 8]", extra: str = ""):
    text = f"network: t\ninput: {input_shape}\n{extra}layers:\n{body}"
    return load_text(text, "t.yaml")


def run_onnx(model, x: np.ndarray) -> np.ndarray:
    return cnnc.Session(model.SerializeToString(), "cpu").run(x)


def drain(terminal: int) -> bytes:
    """All a child wrote to the pseudo-terminal whose controlling end is `terminal`, until it closed it
    (Linux reports that as EIO); `terminal` is closed after."""
    shown = b""
    while True:
        try:
            chunk = os.read(terminal, 1 << 16)
        except OSError:  # EIO: the child has closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(terminal)
    return shown


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ---- the `cnnc` command, in this process ------------------------------------------------------------
@dataclass(frozen=True)
class Result:
    """What one `cnnc` command did: its exit status and what it wrote to stdout and stderr."""

    code: int
    out: str
    err: str


class Hang(BaseException):
    """Raised by the runner's alarm; a BaseException so that the CLI's `except Exception` cannot turn it
    into an ordinary internal error."""


class CliRunner:
    """Runs `cnnc ARGV...` through `cnnc.cli.main`, as `python -m cnnc` would in a child process.

    The conditions are the child's: stdout and stderr are captured at the file-descriptor level (so native
    libraries' writes are caught too) and are not terminals, as pipes are not; the environment is the
    test's, as a child inherits it (rich then sees the same COLUMNS and no terminal, and prints the same
    plain text). A usage error's SystemExit becomes its exit status, as the interpreter makes it. The
    working folder, the SIGTERM handler and the warnings state are restored afterwards."""

    def __init__(self, capfd: pytest.CaptureFixture[str]) -> None:
        self._capfd = capfd

    def run(self, *argv: str | os.PathLike, cwd: str | os.PathLike | None = None,
            timeout: float | None = 120) -> Result:
        """`timeout`: seconds after which the command is stopped and the test fails (None: no limit)."""
        from cnnc.cli import main
        self._capfd.readouterr()  # what the test printed before is not the command's
        folder, term = os.getcwd(), signal.getsignal(signal.SIGTERM)
        try:
            with warnings.catch_warnings(), alarm(timeout):
                if cwd is not None:
                    os.chdir(cwd)
                code = _exit_status(main, [os.fspath(a) for a in argv])
        except Hang:
            pytest.fail(f"`cnnc {' '.join(map(str, argv))}` did not finish within {timeout} s")
        finally:
            os.chdir(folder)
            signal.signal(signal.SIGTERM, term)
        out, err = self._capfd.readouterr()
        return Result(code, out, err)


def _exit_status(main: Callable[[list[str]], int], argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse: usage errors, --help, --version
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        print(e.code, file=sys.stderr)  # what the interpreter does with a message
        return 1


@contextlib.contextmanager
def alarm(seconds: float | None) -> Iterator[None]:
    if not seconds:
        yield
        return

    def ring(signum: int, frame: FrameType | None) -> None:
        raise Hang

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def cli(capfd: pytest.CaptureFixture[str]) -> CliRunner:
    """`cli.run("check", "lenet5")` -> Result(code, out, err): the `cnnc` command, in this process."""
    return CliRunner(capfd)
