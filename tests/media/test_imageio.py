"""Loading user images: every storage format ends as BGR uint8, bad files give clear errors."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from livefusion.media.imageio import ImageLoadError, load_image, read_bgr, to_bgr_uint8


def _write(path: Path, image: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), image), path
    return path


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _paletted_png(path: Path, indices: np.ndarray, palette: list[tuple[int, int, int]]) -> Path:
    """A colour-type-3 (paletted) PNG written by hand: OpenCV cannot write one."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    h, w = indices.shape
    raw = b"".join(b"\x00" + indices[row].astype(np.uint8).tobytes() for row in range(h))
    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
           + chunk(b"PLTE", b"".join(bytes(c) for c in palette))
           + chunk(b"IDAT", zlib.compress(raw))
           + chunk(b"IEND", b""))
    path.write_bytes(png)
    return path


@pytest.mark.parametrize(
    "name, image, expect_bgr, note",
    [
        ("gray.png", np.full((20, 30), 77, np.uint8), (77, 77, 77), "grayscale"),
        ("colour.png", np.dstack([np.full((20, 30), v, np.uint8) for v in (10, 20, 30)]), (10, 20, 30), None),
        ("deep.png", np.dstack([np.full((20, 30), v, np.uint16) for v in (0x1000, 0x8000, 0xFFFF)]),
         (0x10, 0x80, 0xFF), "16-bit"),
        ("gray16.png", np.full((20, 30), 0x4000, np.uint16), (0x40, 0x40, 0x40), "16-bit"),
        ("opaque.png", np.dstack([np.full((20, 30), v, np.uint8) for v in (10, 20, 30, 255)]), (10, 20, 30),
         "transparency"),
        ("clear.png", np.dstack([np.full((20, 30), v, np.uint8) for v in (10, 20, 30, 0)]), (255, 255, 255),
         "transparency"),
        ("float.tiff", np.full((20, 30, 3), 0.5, np.float32), (128, 128, 128), "floating-point"),
    ],
)
def test_formats_become_bgr_uint8(tmp_path, name, image, expect_bgr, note):
    loaded = load_image(_write(tmp_path / name, image))
    assert loaded.image.dtype == np.uint8
    assert loaded.image.shape == (20, 30, 3)
    assert tuple(int(v) for v in loaded.image[5, 5]) == expect_bgr
    assert loaded.original_size == (30, 20)
    if note:
        assert any(note in n for n in loaded.notes), loaded.notes
    else:
        assert loaded.notes == []


def test_paletted_png_uses_palette_colours(tmp_path):
    indices = np.zeros((8, 8), np.uint8)
    indices[:, 4:] = 1
    path = _paletted_png(tmp_path / "pal.png", indices, [(255, 0, 0), (0, 0, 255)])  # RGB red, blue
    image = read_bgr(path)
    assert image.shape == (8, 8, 3) and image.dtype == np.uint8
    assert tuple(image[0, 0]) == (0, 0, 255)  # red in BGR
    assert tuple(image[0, 7]) == (255, 0, 0)  # blue in BGR


def test_huge_image_is_downscaled_with_a_note(tmp_path):
    big = np.zeros((8000, 8000), np.uint8)
    big[:, 4000:] = 200
    path = tmp_path / "huge.png"
    assert cv2.imwrite(str(path), big, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    loaded = load_image(path, max_side=1024)
    assert loaded.image.shape == (1024, 1024, 3)
    assert loaded.scale == pytest.approx(1024 / 8000)
    assert loaded.original_size == (8000, 8000)
    assert any("downscaled from 8000x8000" in n for n in loaded.notes)
    assert loaded.image[10, 10, 0] == 0 and loaded.image[10, 1000, 0] == 200


def test_max_side_none_keeps_size(tmp_path):
    path = _write(tmp_path / "a.png", np.zeros((50, 70, 3), np.uint8))
    assert load_image(path, max_side=None).image.shape == (50, 70, 3)
    assert load_image(path, max_side=35).image.shape == (25, 35, 3)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d: d / "missing.jpg", "does not exist"),
        (lambda d: d, "not a file"),
        (lambda d: _file(d / "empty.png", b""), "empty"),
        (lambda d: _file(d / "junk.jpg", b"this is not a picture" * 10), "corrupt"),
    ],
    ids=["missing", "directory", "empty", "corrupt"],
)
def test_unusable_files_name_the_file_and_say_what_to_do(tmp_path, make, words):
    path = make(tmp_path)
    assert isinstance(path, Path)
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    message = str(info.value)
    assert str(path) in message and words in message


def test_truncated_jpeg_is_an_error(tmp_path):
    ok, data = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    path = tmp_path / "cut.jpg"
    path.write_bytes(data.tobytes()[:100])
    with pytest.raises(ImageLoadError, match="cut.jpg"):
        load_image(path)


def test_to_bgr_rejects_odd_layouts():
    with pytest.raises(ImageLoadError, match="layout"):
        to_bgr_uint8(np.zeros((4, 4, 2), np.uint8))
