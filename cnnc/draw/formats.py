"""A picture's SVG text -> the bytes of a file: SVG itself, or PNG or PDF for slides and papers.

PNG and PDF are rendered by CairoSVG, an optional dependency (`pip install 'cnnc[draw]'`), imported only
when one is asked for. PNG is drawn at print resolution (300 dpi by default: the SVG's pixels are 1/96 in)
and records that resolution, so that a document it is placed in sizes it as drawn; PDF stays vector, one
page the picture's size, with no creation date, so that the same picture is the same bytes.
"""
from __future__ import annotations

import os
import re
import struct
import zlib
from pathlib import Path
from typing import Any, Literal

from ..errors import CnncError

Format = Literal["svg", "png", "pdf"]
FORMATS: tuple[Format, ...] = ("svg", "png", "pdf")
DPI = 300  # print resolution
CSS_DPI = 96  # an SVG pixel is 1/96 inch
MAX_DPI = 1200
MAX_PIXELS = 100_000_000  # a PNG at most this large (400 MB of RGBA while it is drawn)
INSTALL = "pip install 'cnnc[draw]'"


def format_of(path: str | os.PathLike | None, given: str | None = None) -> Format:
    """The format to write: `given` (`--format`), else the suffix of `path`, else SVG; a suffix that
    names another format, or no format cnnc writes, is an error."""
    suffix = Path(path).suffix.lower().lstrip(".") if path is not None else ""
    if given is not None:
        given = given.lower()
        if given not in FORMATS:
            raise CnncError(f"picture format `{given}`: expected one of {', '.join(FORMATS)}")
        if suffix in FORMATS and suffix != given:
            raise CnncError(f"`{path}` names a .{suffix} file, but the format asked for is {given}",
                            help=f"drop the format, or name the file `{Path(path or '').stem}.{given}`")
        return given
    if suffix in FORMATS:
        return suffix
    if suffix and suffix.isalpha():
        raise CnncError(f"`{path}`: cnnc draws .svg, .png and .pdf files, not .{suffix}",
                        help="name the file with one of those suffixes, or give --format")
    return "svg"


def encode(svg: str, fmt: Format, dpi: int = DPI) -> bytes:
    """The bytes of the picture `svg` in format `fmt`; PNG at `dpi` dots per inch."""
    if fmt == "svg":
        return svg.encode("utf-8")
    cairosvg = renderer(fmt)
    data = svg.encode("utf-8")
    if fmt == "png":
        check_dpi(dpi)
        check_pixels(svg, dpi)
        return _with_resolution(cairosvg.svg2png(bytestring=data, scale=dpi / CSS_DPI), dpi)
    return _pdf(cairosvg, data)


def renderer(fmt: str) -> Any:
    """CairoSVG, or a CnncError saying how to install it (checked before any drawing is done)."""
    try:
        import cairosvg
    except ImportError:
        raise CnncError(f"{fmt.upper()} pictures need CairoSVG, which is not installed",
                        help=f"`{INSTALL}` (or write an .svg file, which needs nothing more)") from None
    except OSError as e:  # cairocffi found no Cairo library
        raise CnncError(f"{fmt.upper()} pictures need the Cairo library, which CairoSVG cannot load: {e}",
                        help="install Cairo (`apt install libcairo2`, `brew install cairo`), "
                             "or write an .svg file") from None
    return cairosvg


def check_dpi(dpi: int) -> None:
    if isinstance(dpi, bool) or not isinstance(dpi, int) or not 1 <= dpi <= MAX_DPI:
        raise CnncError(f"--dpi {dpi}: expected a whole number from 1 to {MAX_DPI} (300 is print resolution)")


def pixels(svg: str, dpi: int) -> tuple[int, int]:
    """The PNG's width and height in pixels: the SVG's size, 1/96 inch per pixel, at `dpi`."""
    head = re.search(r'<svg[^>]*\swidth="([\d.]+)"[^>]*\sheight="([\d.]+)"', svg)
    if head is None:
        raise ValueError("cnnc draw: the picture has no width and height")  # a bug, never the user's
    scale = dpi / CSS_DPI
    return round(float(head[1]) * scale), round(float(head[2]) * scale)


def check_pixels(svg: str, dpi: int) -> None:
    w, h = pixels(svg, dpi)
    if w * h > MAX_PIXELS:
        most = int(dpi * (MAX_PIXELS / (w * h)) ** 0.5)
        raise CnncError(f"at {dpi} dpi the PNG would be {w:,} x {h:,} pixels, more than {MAX_PIXELS:,}",
                        help=f"draw it at `--dpi {most}` or less, or as a .pdf or .svg, which stay sharp at any "
                             f"size")


def _with_resolution(png: bytes, dpi: int) -> bytes:
    """`png` with a pHYs chunk after its header: its pixels per metre, so that it prints at its size."""
    per_metre = round(dpi / 0.0254)
    body = b"pHYs" + struct.pack(">IIB", per_metre, per_metre, 1)
    chunk = struct.pack(">I", 9) + body + struct.pack(">I", zlib.crc32(body))
    header_end = 8 + 8 + 13 + 4  # signature, IHDR's length and type, its 13 bytes, its CRC
    return png[:header_end] + chunk + png[header_end:]


def _pdf(cairosvg: Any, data: bytes) -> bytes:
    """One vector page; cnnc as its creator and no creation date, so the bytes depend on the picture only."""
    import io

    import cairocffi

    class Surface(cairosvg.surface.PDFSurface):
        def _create_surface(self, width: float, height: float) -> Any:
            surface, w, h = super()._create_surface(width, height)
            if hasattr(surface, "set_metadata"):  # Cairo 1.16 and later
                surface.set_metadata(cairocffi.PDF_METADATA_CREATE_DATE, "")
                surface.set_metadata(cairocffi.PDF_METADATA_CREATOR, "cnnc")
            return surface, w, h

    out = io.BytesIO()
    Surface.convert(bytestring=data, write_to=out)
    return out.getvalue()
