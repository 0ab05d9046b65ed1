"""The errors of the dsl stage: the file, its structure, its inline expressions."""
from __future__ import annotations

from ..errors import CnncError


class SourceError(CnncError):
    """The file cannot be read or is not well-formed YAML."""

    kind = "syntax error"
    code = "E0100"


class SchemaError(CnncError):
    """The document does not have the structure of a cnnc network."""

    kind = "schema error"
    code = "E0200"


class ExprError(CnncError):
    """An inline expression does not parse or does not evaluate."""

    kind = "expression error"
    code = "E0300"
