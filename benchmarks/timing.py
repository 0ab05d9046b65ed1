"""What the by-hand benchmarks share: one process timed under GNU time, and numpy's floor for seeded weights.

`timed(argv, cwd)` runs a command under /usr/bin/time and gives its wall seconds, peak RSS in kB and CPU
seconds (user + system: less sensitive than the wall time to what else runs on the machine), or stops the
benchmark with the command's error. `FLOOR` is a script (`python -c FLOOR N FILE`) that draws N float32 normals
as cnnc does (numpy's PCG64, in blocks of 2^20, on a thread per core, huge pages off) and writes them to one
file reserved ahead (`posix_fallocate`, as cnnc): what any compiler of seeded weights must at least do.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent

FLOOR = """
import os, sys, numpy as np
from collections import deque
from concurrent.futures import ThreadPoolExecutor
n, block, cores = int(sys.argv[1]), 1 << 20, len(os.sched_getaffinity(0))
np._core.multiarray._set_madvise_hugepage(False)  # as cnnc: no huge-page compaction for arrays written once
def draw(k):
    out = np.empty(min(block, n - k * block), np.float32)
    np.random.Generator(np.random.PCG64([0, k])).standard_normal(out=out, dtype=np.float32)
    out *= np.float32(0.01)
    return out
with open(sys.argv[2], "wb") as f, ThreadPoolExecutor(cores) as pool:
    os.posix_fallocate(f.fileno(), 0, 4 * n)
    ahead = deque()
    for k in range(-(-n // block)):
        ahead.append(pool.submit(draw, k))
        if len(ahead) > 2 * cores:
            f.write(ahead.popleft().result())
    while ahead:
        f.write(ahead.popleft().result())
"""


class Timed(NamedTuple):
    wall: float  # seconds
    rss_kb: int  # peak resident memory, as GNU time reports it
    cpu: float  # user + system seconds

    @property
    def rss_mb(self) -> float:
        return self.rss_kb / 1024


def timed(argv: list[str], cwd: Path = ROOT) -> Timed:
    """One process under GNU time; a failure ends the benchmark with the command's error output."""
    r = subprocess.run(["/usr/bin/time", "-f", "%e %M %U %S", *argv], capture_output=True, text=True, cwd=cwd)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(str(a) for a in argv[:5])} ... failed:\n{r.stderr[-3000:]}")
    wall, rss_kb, user, system = r.stderr.strip().splitlines()[-1].split()
    return Timed(float(wall), int(rss_kb), float(user) + float(system))
