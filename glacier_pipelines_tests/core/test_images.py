"""probe_image: header-only image dimensions, bounded against decompression bombs."""

from __future__ import annotations

import io
import random
import struct
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, features

from glacier_pipelines.core.images import (
    DEFAULT_MAX_PIXELS,
    ImageHeaderIncomplete,
    ImageProbeError,
    ImageRefused,
    ImageSize,
    NotAnImage,
    probe_image,
)

# Distinct dimensions per format, so a mix-up of width/height or of files shows.
CASES = {
    "PNG": (37, 23),
    "JPEG": (640, 480),
    "GIF": (3000, 7),
    "BMP": (1, 1),
    "TIFF": (23, 37),
    "WEBP": (641, 479),
}
EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "BMP": "bmp", "TIFF": "tif", "WEBP": "webp"}
needs_webp = pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP")


def encode(fmt: str, size: tuple[int, int]) -> bytes:
    """An image of `size` in `fmt`; GIF is animated (2 frames) to cover the multi-frame case."""
    out = io.BytesIO()
    first = Image.new("RGB", size, (200, 30, 10))
    if fmt == "GIF":
        first.save(out, "GIF", save_all=True, append_images=[Image.new("RGB", size, (10, 30, 200))])
        assert Image.open(io.BytesIO(out.getvalue())).n_frames == 2
    else:
        first.save(out, fmt)
    return out.getvalue()


def noisy(fmt: str, size: tuple[int, int]) -> bytes:
    """Incompressible pixels, so the file is much larger than its header."""
    out = io.BytesIO()
    Image.effect_noise(size, 100).convert("RGB").save(out, fmt)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A real 1x1 PNG whose IHDR (and CRC) is patched to claim width x height; no pixels exist."""
    out = io.BytesIO()
    Image.new("L", (1, 1)).save(out, "PNG")
    data = bytearray(out.getvalue())
    assert data[12:16] == b"IHDR"
    ihdr = struct.pack(">II", width, height) + data[24:29]  # keep bit depth, colour type, ...
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def all_formats() -> list:
    return [pytest.param(f, marks=needs_webp) if f == "WEBP" else f for f in CASES]


@pytest.mark.parametrize("fmt", all_formats())
def test_size_from_a_path(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"image.{EXTENSIONS[fmt]}"
    path.write_bytes(encode(fmt, CASES[fmt]))
    expected = ImageSize(*CASES[fmt], format=fmt)
    assert probe_image(path, complete=True) == expected
    assert probe_image(str(path), complete=True) == expected


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
@pytest.mark.parametrize("fmt", all_formats())
def test_size_from_complete_bytes(fmt: str, wrap: type) -> None:
    data = wrap(encode(fmt, CASES[fmt]))
    assert probe_image(data, complete=True) == ImageSize(*CASES[fmt], format=fmt)


def test_multi_page_tiff_reports_the_first_page() -> None:
    out = io.BytesIO()
    Image.new("RGB", (23, 37)).save(out, "TIFF", save_all=True, append_images=[Image.new("RGB", (300, 200))])
    assert Image.open(io.BytesIO(out.getvalue())).n_frames == 2
    assert probe_image(out.getvalue(), complete=True) == ImageSize(23, 37, "TIFF")


@pytest.mark.parametrize(("fmt", "size"), [("JPEG", (3000, 2000)), ("PNG", (1200, 900))])
def test_size_from_the_leading_64_kib_of_a_large_file(fmt: str, size: tuple[int, int]) -> None:
    data = noisy(fmt, size)
    assert len(data) > 10 * 65536  # the prefix really is a small part of the file
    assert probe_image(data[:65536], complete=False) == ImageSize(*size, format=fmt)


@needs_webp
def test_webp_needs_the_whole_file() -> None:
    """Pillow hands WebP to libwebp as a whole, so a prefix is reported incomplete, not misread."""
    data = noisy("WEBP", (700, 500))
    assert len(data) > 2 * 65536
    with pytest.raises(ImageHeaderIncomplete, match="WEBP"):
        probe_image(data[:65536], complete=False)
    assert probe_image(data, complete=True) == ImageSize(700, 500, "WEBP")


def test_jpeg_whose_frame_header_comes_after_256_kib_of_app_segments(tmp_path: Path) -> None:
    jpeg = encode("JPEG", (640, 480))
    app9 = b"\xff\xe9" + struct.pack(">H", 65535) + bytes(65533)  # largest possible segment
    data = jpeg[:2] + app9 * 4 + jpeg[2:]  # right after SOI
    assert data.index(b"\xff\xc0") > 256 * 1024  # SOF0 (the dimensions) is far in
    expected = ImageSize(640, 480, "JPEG")
    assert probe_image(data, complete=True) == expected
    assert probe_image(data[:300_000], complete=False) == expected
    (tmp_path / "big-exif.jpg").write_bytes(data)
    assert probe_image(tmp_path / "big-exif.jpg", complete=True) == expected
    with pytest.raises(ImageHeaderIncomplete, match="JPEG.*65536"):
        probe_image(data[:65536], complete=False)
    with pytest.raises(NotAnImage):  # the same bytes, declared complete: a truncated file
        probe_image(data[:65536], complete=True)


@pytest.mark.parametrize("complete", [True, False])
@pytest.mark.parametrize(
    "data",
    [
        b"just some text, not an image\n" * 20,
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
        random.Random(1).randbytes(4096),
        b"",
    ],
    ids=["text", "svg", "random", "empty"],
)
def test_non_images_are_not_images(data: bytes, complete: bool) -> None:
    with pytest.raises(NotAnImage):
        probe_image(data, complete=complete)


def test_text_file_on_disk_is_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello\n" * 100)
    with pytest.raises(NotAnImage, match="not an image"):
        probe_image(tmp_path / "notes.txt", complete=True)


def test_first_10_bytes_of_a_png() -> None:
    head = encode("PNG", (37, 23))[:10]
    with pytest.raises(ImageHeaderIncomplete, match="PNG"):
        probe_image(head, complete=False)
    with pytest.raises(NotAnImage):  # all there is: a truncated file
        probe_image(head, complete=True)


@pytest.mark.parametrize("fmt", all_formats())
def test_header_cut_short_is_incomplete(fmt: str) -> None:
    with pytest.raises(ImageHeaderIncomplete, match=fmt):
        probe_image(encode(fmt, CASES[fmt])[:20], complete=False)


@pytest.mark.parametrize("as_path", [False, True])
def test_decompression_bomb_header_is_refused_fast(tmp_path: Path, as_path: bool) -> None:
    bomb = png_claiming(100_000, 100_000)
    with pytest.raises(Image.DecompressionBombError):  # the crafted header is valid: Pillow parses it
        Image.open(io.BytesIO(bomb))
    source: bytes | Path = bomb
    if as_path:
        source = tmp_path / "bomb.png"
        source.write_bytes(bomb)
    limit_before = Image.MAX_IMAGE_PIXELS
    started = time.perf_counter()
    with pytest.raises(ImageRefused) as refused:
        probe_image(source, complete=True)
    assert time.perf_counter() - started < 1.0  # header only: decoding 10 gigapixels could not be
    assert "100000x100000" in str(refused.value)
    assert f"{DEFAULT_MAX_PIXELS:,}" in str(refused.value)
    assert Image.MAX_IMAGE_PIXELS == limit_before  # the process-wide Pillow limit is untouched


def test_max_pixels_is_the_limit_not_pillows_global() -> None:
    """225 Mpx is over Pillow's own bomb limit but under ours: the caller's limit decides."""
    header = png_claiming(15_000, 15_000)
    assert 15_000 * 15_000 > 2 * Image.MAX_IMAGE_PIXELS
    assert probe_image(header, complete=False) == ImageSize(15_000, 15_000, "PNG")
    with pytest.raises(ImageRefused, match="15000x15000"):
        probe_image(header, complete=False, max_pixels=100_000_000)


def test_max_pixels_parameter() -> None:
    data = encode("JPEG", (640, 480))
    with pytest.raises(ImageRefused, match=r"640x480.*1,000 pixels"):
        probe_image(data, complete=True, max_pixels=1000)
    assert probe_image(data, complete=True, max_pixels=640 * 480) == ImageSize(640, 480, "JPEG")


@pytest.mark.parametrize(("width", "height"), [(0, 5), (5, 0)])
def test_zero_dimensions_are_rejected(width: int, height: int) -> None:
    # Pillow itself refuses a zero size as "not identified", so this surfaces as NotAnImage.
    with pytest.raises((NotAnImage, ImageRefused)):
        probe_image(png_claiming(width, height), complete=True)


def test_misuse_and_unreadable_paths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="complete=True"):
        probe_image(tmp_path / "x.png", complete=False)
    with pytest.raises(ImageProbeError, match="FileNotFoundError"):
        probe_image(tmp_path / "missing.png", complete=True)


SEEDS = [encode(fmt, (7, 5)) for fmt in CASES if fmt != "WEBP" or features.check("webp")]
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(data: bytes, complete: bool) -> None:
    try:
        result = probe_image(data, complete=complete)
    except ImageProbeError as exc:
        assert str(exc)  # a reason a human can read
    else:
        assert isinstance(result, ImageSize) and result.width > 0 and result.height > 0


@PROPERTY
@given(data=st.binary(max_size=4096), complete=st.booleans())
def test_arbitrary_bytes_only_raise_probe_errors(data: bytes, complete: bool) -> None:
    _check(data, complete)


@PROPERTY
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
    cut=st.integers(0, 10_000),
    complete=st.booleans(),
)
def test_damaged_images_only_raise_probe_errors(seed: bytes, edits: list[tuple[int, int]], cut: int, complete: bool) -> None:
    """Random bytes rarely pass a magic check; corrupted real images reach the format parsers."""
    data = bytearray(seed)
    for index, value in edits:
        data[index % len(data)] = value
    _check(bytes(data[: max(cut, 1)] if cut < len(data) else data), complete)
