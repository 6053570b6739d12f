"""Open a fetched or uploaded input image safely: real image, bounded size, upright, RGB."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from fluxserve.errors import InputFetchError

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 50_000_000
"""Larger than any photo a user would send for editing, far below what would exhaust memory."""

FORMATS = ("PNG", "JPEG", "MPO", "WEBP", "GIF", "BMP", "TIFF", "AVIF")
"""The formats we decode. Pillow knows many more (EPS even runs Ghostscript); users send these."""


def _formats() -> tuple[str, ...]:
    Image.init()
    return tuple(name for name in FORMATS if name in Image.OPEN)


def open_input_image(path: Path, what: str, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Return the image at ``path`` decoded, EXIF-rotated and converted to RGB.

    The file is verified first (structure and checksums) and then reopened, as Pillow requires.
    The pixel count is checked from the header before anything is decoded, so a small file that
    claims huge dimensions (a decompression bomb) is refused without allocating it. Transparent
    images are flattened onto white. Raises :class:`InputFetchError` naming ``what``.
    """
    path = Path(path)
    _verify(path, what)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=_formats()) as image:
                _check_size(image, what, max_pixels)
                image.load()
                upright = ImageOps.exif_transpose(image)
                return _to_rgb(upright)
    except InputFetchError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputFetchError(f"{what}: the image is too large to decode safely") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputFetchError(f"{what}: the image file is damaged or truncated ({exc})") from None


def _verify(path: Path, what: str) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=_formats()) as image:
                image.verify()
    except FileNotFoundError:
        raise InputFetchError(f"{what}: the file is missing") from None
    except UnidentifiedImageError:
        raise InputFetchError(
            f"{what}: the content is not an image in a format this service reads ({', '.join(_formats())})"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputFetchError(f"{what}: the image is too large to decode safely") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputFetchError(f"{what}: the image file is damaged or truncated ({exc})") from None


def _check_size(image: Image.Image, what: str, max_pixels: int) -> None:
    width, height = image.size
    if width < 1 or height < 1:
        raise InputFetchError(f"{what}: the image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise InputFetchError(
            f"{what}: the image is {width}x{height} pixels, more than the {max_pixels:,} pixel limit"
        )


def _to_rgb(image: Image.Image) -> Image.Image:
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")
