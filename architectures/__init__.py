"""The shipped architecture files, found by name (`cnnc compile resnet50`), and the variants of the
family files among them (`cnnc compile efficientnet_b3` is a variant of efficientnet.yaml)."""
from __future__ import annotations

import functools
from pathlib import Path

_FOLDER = Path(__file__).parent  # a folder on disk, installed or not (importlib.resources took 2 % of `cnnc check`)


def _files() -> dict[str, Path]:
    return {p.name[:-5]: p for p in _FOLDER.iterdir() if p.name.endswith(".yaml")}


@functools.cache
def _variants() -> dict[str, str]:
    """variant name -> the file (by its name) that declares it. Read only when a name is not a file's:
    the files' `variants:` keys, with the fast YAML reader."""
    import yaml

    from ..dsl.family import variants_of
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    found: dict[str, str] = {}
    for name, file in sorted(_files().items()):
        text = file.read_text(encoding="utf-8")
        if "variants:" not in text:  # most files: no need to read them as YAML
            continue
        try:
            data = yaml.load(text, Loader=loader)
        except yaml.YAMLError:  # reported, located, when that file itself is loaded; other names still work
            continue
        for variant in variants_of(data):
            found.setdefault(variant, name)
    return found


def names() -> list[str]:
    """The names of the shipped networks, sorted: each variant of a family file, and each other file
    (a family file's own name still builds it with its parameters' own values)."""
    families = set(_variants().values())
    return sorted({*(name for name in _files() if name not in families), *_variants()})


def variant_names() -> list[str]:
    """Every variant's name, in the order of the files (sorted) and of each file's `variants:`."""
    return list(_variants())


def files() -> list[str]:
    """The names of the shipped files (a family file once, not per variant), sorted."""
    return sorted(_files())


def find(name: str) -> tuple[Path, str | None] | None:
    """The shipped file of `name` and the variant it names (None: the file itself), or None."""
    candidate = _FOLDER / f"{name}.yaml"
    if candidate.is_file():
        return candidate, None
    family = _variants().get(name)
    return (_files()[family], name) if family is not None else None


def path(name: str) -> Path | None:
    """The file of the shipped architecture `name` (a file's name or a variant's), or None."""
    found = find(name)
    return found[0] if found is not None else None
