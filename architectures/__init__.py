"""The shipped architecture files, found by name (`cnnc compile resnet50`)."""
from __future__ import annotations

from importlib import resources
from pathlib import Path


def names() -> list[str]:
    """The names of the shipped architectures, sorted."""
    return sorted(p.name[:-5] for p in resources.files(__name__).iterdir() if p.name.endswith(".yaml"))


def path(name: str) -> Path | None:
    """The file of the shipped architecture `name`, or None."""
    candidate = resources.files(__name__) / f"{name}.yaml"
    return Path(str(candidate)) if candidate.is_file() else None
