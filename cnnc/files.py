"""Atomic file writes: a temporary file beside the target, renamed over it only once complete, so that a
failed or interrupted write leaves no partial file and keeps an existing one untouched."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO, Iterator

from .errors import CnncError


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, error: type[Exception] = CnncError, what: str = "file") -> Iterator[BinaryIO]:
    """`with atomic_file(path) as f: f.write(...)`; an OSError becomes `error` naming the path."""
    path = Path(path)
    if path.is_dir():
        raise error(f"`{path}` is a directory; give a file name for the {what}")
    if not path.parent.exists():
        raise error(f"cannot write `{path}`: the folder `{path.parent}` does not exist")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            yield f
        os.replace(tmp, path)
    except OSError as e:
        raise error(f"cannot write `{path}`: {e.strerror or e}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | os.PathLike, text: str, what: str = "file") -> None:
    with atomic_file(path, what=what) as f:
        f.write(text.encode("utf-8"))
