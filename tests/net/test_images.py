"""open_input_image: real images open upright in RGB; anything else fails naming the input."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from fluxserve.errors import InputFetchError
from fluxserve.net.images import open_input_image

RED, BLUE = (255, 0, 0), (0, 0, 255)


def two_halves(width: int = 40, height: int = 20) -> Image.Image:
    """Left half red, right half blue."""
    image = Image.new("RGB", (width, height), BLUE)
    image.paste(RED, (0, 0, width // 2, height))
    return image


def close(a: tuple[int, ...], b: tuple[int, ...], tol: int = 40) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def test_png_opens_as_rgb(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    two_halves().save(path)
    image = open_input_image(path, "inputImageUrl")
    assert image.mode == "RGB"
    assert image.size == (40, 20)
    assert image.getpixel((5, 5)) == RED


def test_transparent_png_is_flattened_on_white(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(path)
    image = open_input_image(path, "inputImageUrl")
    assert image.mode == "RGB"
    assert image.getpixel((3, 3)) == (255, 255, 255)


def test_jpeg_exif_orientation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    two_halves().save(path, "JPEG", exif=exif, quality=95)
    image = open_input_image(path, "inputImageUrl")
    assert image.size == (20, 40)
    assert close(image.getpixel((10, 5)), RED)  # the left (red) half is now on top
    assert close(image.getpixel((10, 35)), BLUE)


def test_grayscale_jpeg_becomes_rgb(tmp_path: Path) -> None:
    path = tmp_path / "g.jpg"
    Image.new("L", (16, 16), 128).save(path)
    assert open_input_image(path, "inputImageUrl").mode == "RGB"


def test_non_image_bytes_rejected_naming_input(tmp_path: Path) -> None:
    path = tmp_path / "page.png"
    path.write_bytes(b"<html><body>Not found</body></html>")
    with pytest.raises(InputFetchError, match=r"^inputImage2Url: the content is not an image"):
        open_input_image(path, "inputImage2Url")


def test_truncated_png_rejected(tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    two_halves(64, 64).save(path)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(InputFetchError, match=r"^inputImageUrl: the image file is damaged"):
        open_input_image(path, "inputImageUrl")


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_decompression_bomb_refused_without_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(100_000, 100_000))
    with pytest.raises(InputFetchError, match=r"^inputImageUrl: the image is too large"):
        open_input_image(path, "inputImageUrl")


def test_pixel_limit_is_configurable(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    two_halves(200, 100).save(path)
    with pytest.raises(InputFetchError, match=r"200x100 pixels, more than the 10,000 pixel limit"):
        open_input_image(path, "inputImageUrl", max_pixels=10_000)
    assert open_input_image(path, "inputImageUrl", max_pixels=20_000).size == (200, 100)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFetchError, match=r"^inputImageUrl: the file is missing"):
        open_input_image(tmp_path / "nope.png", "inputImageUrl")


def test_formats_outside_the_allowed_list_are_refused(tmp_path: Path) -> None:
    """Pillow can open EPS (via Ghostscript), PSD, ICO ...; only common photo formats are accepted."""
    path = tmp_path / "icon.ico"
    two_halves(32, 32).save(path, format="ICO")
    with Image.open(path) as image:
        assert image.format == "ICO"  # Pillow itself would open it
    with pytest.raises(
        InputFetchError, match=r"^inputImageUrl: the content is not an image in a format .*PNG"
    ):
        open_input_image(path, "inputImageUrl")


@pytest.mark.parametrize("fmt", ["WEBP", "GIF", "BMP", "TIFF"])
def test_common_formats_open(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"a.{fmt.lower()}"
    two_halves().save(path, format=fmt)
    image = open_input_image(path, "inputImageUrl")
    assert image.mode == "RGB" and image.size == (40, 20)
