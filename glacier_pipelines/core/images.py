"""Pixel dimensions of an image from its header alone (``computeImageSize``): Pillow learns the
size from a few KiB without decoding pixels, so the first multipart part of a big file is enough."""

from __future__ import annotations

import io
import os
import struct
import warnings
from dataclasses import dataclass
from typing import IO

from PIL import Image

DEFAULT_MAX_PIXELS = 1 << 30  # ~1 gigapixel; configurable per call
_NOT_THIS_FORMAT = (SyntaxError, IndexError, TypeError, struct.error)  # Image.open: "try the next plugin"


@dataclass(frozen=True)
class ImageSize:
    width: int
    height: int
    format: str  # Pillow's format name, e.g. "PNG", "JPEG"


class ImageProbeError(Exception):
    """Base of every probe failure; str(exc) is a human-readable reason."""


class NotAnImage(ImageProbeError):
    """No Pillow format identifies the bytes, or a complete file is corrupt."""


class ImageRefused(ImageProbeError):
    """The header claims more pixels than allowed (decompression bomb) or nonsense dimensions."""


class ImageHeaderIncomplete(ImageProbeError):
    """A format recognised the magic, but its header runs past the leading bytes we were given."""


class _LeadingBytes(io.BytesIO):
    """BytesIO that notes when a reader asked for more bytes than there are."""

    ran_out = False

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.ran_out |= size is None or size < 0 or len(data) < size
        return data


def _identify(fp: IO[bytes], filename: str, complete: bool) -> Image.Image:
    """Image.open's plugin loop, minus its check against the global PIL.Image.MAX_IMAGE_PIXELS:
    that check would refuse images under our per-call max_pixels and hide the dimensions we
    report. Plugins that allocate while opening (WebP, GIF) still run their own checks."""
    Image.preinit()
    Image.init()
    prefix = fp.read(16)
    problems: list[str] = []  # only from formats whose magic matched (TGA, SPIDER... accept anything)
    truncated_format = ""
    for fmt in list(Image.ID):
        factory, accept = Image.OPEN[fmt]
        fp.seek(0)
        if isinstance(fp, _LeadingBytes):
            fp.ran_out = False
        magic_matched = False
        try:
            claimed = accept is None or accept(prefix)
            if not claimed or isinstance(claimed, str):  # a str means "recognised but unsupported here"
                continue
            magic_matched = accept is not None
            return factory(fp, filename)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRefused(f"refused by Pillow's decompression-bomb guard: {exc}") from exc
        except Exception as exc:
            if magic_matched:
                problems.append(f"{fmt}: {exc or type(exc).__name__}")
                if getattr(fp, "ran_out", False) and not truncated_format:
                    truncated_format = fmt
            if not isinstance(exc, _NOT_THIS_FORMAT):
                break  # Image.open gives up here too: the claiming plugin found the file broken
    if truncated_format and not complete:
        raise ImageHeaderIncomplete(
            f"looks like {truncated_format}, but its header does not fit in the first {fp.seek(0, io.SEEK_END)} bytes given"
        )
    raise NotAnImage(
        f"not a readable image: {'; '.join(problems)}"[:300] if problems else "not an image: no format Pillow knows matches its first bytes"
    )


def probe_image(
    source: bytes | bytearray | memoryview | str | os.PathLike[str], *, complete: bool, max_pixels: int = DEFAULT_MAX_PIXELS
) -> ImageSize:
    """Width, height and format from the header only (never decodes pixels; first frame of many).
    ``source`` is the leading bytes of a file (``complete=False``: more follow that we do not
    have) or all of them, or a path to a complete file (``complete`` must be True).
    Whatever the content, raises only ImageProbeError subclasses."""
    in_memory = isinstance(source, (bytes, bytearray, memoryview))
    filename = "" if in_memory else os.fspath(source)  # type: ignore[arg-type]
    if not (in_memory or complete):
        raise ValueError("a path names a complete file: pass complete=True")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's "corrupt EXIF"-style notes are not our concern...
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # ...but a bomb is refused
            with _LeadingBytes(source) if in_memory else open(filename, "rb") as fp:  # type: ignore[arg-type]
                im = _identify(fp, filename, complete)
    except ImageProbeError:
        raise
    except Exception as exc:  # plugins' errors are handled in _identify: this is I/O (missing file...)
        raise ImageProbeError(f"cannot read {filename or 'the bytes'}: {type(exc).__name__}: {exc}") from exc
    (width, height), fmt = im.size, im.format or "unknown"
    if width <= 0 or height <= 0:
        raise ImageRefused(f"{fmt} header claims impossible dimensions {width}x{height}")
    if width * height > max_pixels:
        raise ImageRefused(
            f"{fmt} header claims {width}x{height} = {width * height:,} pixels, over "
            f"the limit of {max_pixels:,} pixels (possible decompression bomb)"
        )
    return ImageSize(width=width, height=height, format=fmt)
