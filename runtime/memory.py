"""This process's resident memory, for `cnnc bench --memory`: the current RSS and the peak since a
mark. On Linux the peak is VmHWM, which `mark` resets (/proc/self/clear_refs), so each phase (creating
the session, each batch size) gets its own peak; elsewhere the peak is the process's since it started
(getrusage), and `Probe.since` says so."""
from __future__ import annotations

import sys
from dataclasses import dataclass

_STATUS, _CLEAR_REFS = "/proc/self/status", "/proc/self/clear_refs"


@dataclass
class Probe:
    since: str = "the mark"
    """what each peak is measured from: 'the mark', or 'process start' where the peak cannot be reset"""

    def mark(self) -> None:
        """Start a new peak from the current RSS."""
        try:
            with open(_CLEAR_REFS, "w") as f:
                f.write("5")
        except OSError:
            self.since = "process start"

    def rss_mb(self) -> float | None:
        return _status("VmRSS")

    def peak_mb(self) -> float | None:
        peak = _status("VmHWM") if self.since == "the mark" else None
        if peak is not None:
            return peak
        try:
            import resource
        except ImportError:  # Windows
            return None
        self.since = "process start"
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return maxrss / (1 << 20) if sys.platform == "darwin" else maxrss / 1024  # bytes on macOS, else kB


def _status(key: str) -> float | None:
    """A `kB` line of /proc/self/status, in MB; None off Linux."""
    try:
        with open(_STATUS) as f:
            for line in f:
                name, _, value = line.partition(":")
                if name == key:
                    return int(value.split()[0]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
