"""Protobuf's wire format, the little of it that cnnc writes by hand: a varint and a field's key. Used by
compiler/protowriter.py (a model streamed to disk) and runtime/inplace.py (a model's initializers made
references into its own file). It imports nothing, so neither pays for onnx to use it, and it sits in
`cnnc` itself, beside errors.py and files.py, because both stages use it and neither may import the
other."""
from __future__ import annotations

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5  # wire types


def varint(n: int) -> bytes:
    """`n` (>= 0) as a protobuf varint: 7 bits a byte, low first, the high bit set on all but the last."""
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def tag(field: int, wire: int = LEN) -> bytes:
    """The key of field number `field` with wire type `wire`."""
    return varint(field << 3 | wire)


def length_delimited(field: int, payload: bytes) -> bytes:
    """Field `field` holding `payload` (a message, bytes or a string)."""
    return tag(field) + varint(len(payload)) + payload
