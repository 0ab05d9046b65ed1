"""Protobuf's wire format, the little of it that cnnc reads and writes by hand: varints, a field's key, a
message's fields. Used by compiler/protowriter.py (a model streamed to disk) and runtime/inplace.py (a
model's initializers made references into its own file). It imports nothing, so neither pays for onnx to
use it, and it sits in `cnnc` itself, beside errors.py and files.py, because both stages use it and
neither may import the other."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Union

if TYPE_CHECKING:
    import mmap

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5  # wire types
Buffer = Union[bytes, bytearray, memoryview, "mmap.mmap"]  # anything indexed by int to a byte


_ONE_BYTE = [bytes((n,)) for n in range(0x80)]  # most varints written: field keys, lengths, small dims


class Malformed(ValueError):
    """Bytes that are not a well-formed protobuf message."""


def varint(n: int) -> bytes:
    """`n` (>= 0) as a protobuf varint: 7 bits a byte, low first, the high bit set on all but the last."""
    if 0 <= n < 0x80:
        return _ONE_BYTE[n]
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
    key, size = field << 3 | LEN, len(payload)
    if key < 0x80 and size < 0x80:  # most of a model's fields: names, small messages
        return bytes((key, size)) + payload
    return varint(key) + varint(size) + payload


def read_varint(data: Buffer, pos: int, end: int) -> tuple[int, int]:
    """The varint at data[pos:end] and the position after it."""
    result = shift = 0
    while pos < end and shift < 64:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise Malformed(f"a truncated varint before byte {pos}")


def fields(data: Buffer, begin: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
    """(field number, wire type, start of the field, its end, start of its value) for each field of the
    message in data[begin:end]."""
    pos = begin
    while pos < end:
        key, value_start = read_varint(data, pos, end)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            _, stop = read_varint(data, value_start, end)
        elif wire == LEN:
            size, value_start = read_varint(data, value_start, end)
            stop = value_start + size
        elif wire in (FIXED64, FIXED32):
            stop = value_start + (8 if wire == FIXED64 else 4)
        else:
            raise Malformed(f"wire type {wire} at byte {pos}")
        if stop > end or number == 0:
            raise Malformed(f"field {number} at byte {pos} runs past its message")
        yield number, wire, pos, stop, value_start
        pos = stop
