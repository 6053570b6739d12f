"""Cheap previews of FLUX latents during denoising: a linear projection from tokens to pixels.

FLUX.1 and FLUX.2 pipelines denoise a sequence of *tokens*, one per 16x16 pixel patch, in
row-major order. A token holds ``C`` VAE latent channels for a 2x2 block of latent pixels (FLUX.1:
16 channels x 4 = 64 values; FLUX.2: 32 x 4 = 128; the tiny test weights: 4 x 4 = 16). A preview
maps each token linearly to the mean colours of its 2x2 block of 8x8 pixel cells — 12 numbers —
so the preview has one pixel per latent pixel (an eighth of the image's width and height).

The projection is not a table copied from somewhere: :func:`fit_projection` finds it by least
squares from pairs (tokens of an encoded image, that image's 8x8 cell colours), once per VAE (see
:mod:`fluxserve.engines.preview_calibration`). A projection costs one small matrix product per
preview — no VAE decode per step.

Pure numpy and PIL; no torch here, so it is unit-tested without a model.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

CELL = 8
"""Pixels per latent pixel along each side (the FLUX VAEs downsample 8x)."""
BLOCK_VALUES = 12
"""A token's 2x2 block of cells, three colours each."""
RIDGE = 1e-3
"""Regularisation of the least-squares fit, relative to the tokens' mean energy."""


@dataclass(frozen=True)
class Projection:
    """``block = token @ matrix + bias``; colours in [-1, 1] as the VAE sees images."""

    matrix: np.ndarray  # (token_dim, 12)
    bias: np.ndarray  # (12,)

    @property
    def token_dim(self) -> int:
        return int(self.matrix.shape[0])


def cell_blocks(image: np.ndarray) -> np.ndarray:
    """The training targets of one image: ``(H/16 * W/16, 12)`` mean colours of each token's cells.

    ``image`` is ``(H, W, 3)`` floats in [-1, 1]; H and W are multiples of 16. Blocks are laid out
    (row in block, column in block, colour), tokens in row-major order like the pipelines'.
    """
    height, width, _ = image.shape
    cells = image.reshape(height // CELL, CELL, width // CELL, CELL, 3).mean(axis=(1, 3))
    rows, cols = height // (2 * CELL), width // (2 * CELL)
    blocks = cells.reshape(rows, 2, cols, 2, 3).transpose(0, 2, 1, 3, 4)
    return blocks.reshape(rows * cols, BLOCK_VALUES)


def fit_projection(tokens: np.ndarray, blocks: np.ndarray) -> Projection:
    """Least-squares (ridge) fit of ``blocks ~ tokens @ matrix + bias``.

    ``tokens`` is ``(N, D)``, ``blocks`` ``(N, 12)``; N should well exceed D.
    """
    tokens = np.asarray(tokens, dtype=np.float64)
    blocks = np.asarray(blocks, dtype=np.float64)
    if tokens.ndim != 2 or blocks.shape != (tokens.shape[0], BLOCK_VALUES):
        raise ValueError(f"need (N, D) tokens and (N, 12) blocks, got {tokens.shape} and {blocks.shape}")
    mean_tokens, mean_blocks = tokens.mean(axis=0), blocks.mean(axis=0)
    centred = tokens - mean_tokens
    gram = centred.T @ centred
    gram += np.eye(gram.shape[0]) * (RIDGE * np.trace(gram) / gram.shape[0] + 1e-12)
    matrix = np.linalg.solve(gram, centred.T @ (blocks - mean_blocks))
    bias = mean_blocks - mean_tokens @ matrix
    return Projection(matrix.astype(np.float32), bias.astype(np.float32))


def project(tokens: np.ndarray, rows: int, cols: int, projection: Projection) -> np.ndarray:
    """Tokens ``(rows * cols, D)`` -> an RGB ``uint8`` image ``(2 * rows, 2 * cols, 3)``."""
    tokens = np.asarray(tokens, dtype=np.float32).reshape(rows * cols, projection.token_dim)
    # einsum, not BLAS: a multi-threaded BLAS spends ~10-40 ms waking its threads for this tiny
    # product on a busy machine, einsum's plain loop takes well under a millisecond.
    blocks = np.einsum("nd,dk->nk", tokens, projection.matrix) + projection.bias
    pixels = blocks.reshape(rows, cols, 2, 2, 3).transpose(0, 2, 1, 3, 4).reshape(2 * rows, 2 * cols, 3)
    return np.clip((pixels + 1.0) * 127.5, 0, 255).astype(np.uint8)


def token_grid(height: int, width: int) -> tuple[int, int]:
    """(rows, cols) of tokens for an image of ``height`` x ``width`` pixels."""
    return height // (2 * CELL), width // (2 * CELL)


def encode_preview(
    rgb: np.ndarray, size: tuple[int, int], image_format: str = "jpeg", quality: int = 70
) -> bytes:
    """A small JPEG/WebP/PNG of ``rgb`` scaled to ``size`` (width, height), at most 256 px a side."""
    width, height = size
    scale = min(1.0, 256 / max(width, height, 1))
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = Image.fromarray(rgb, "RGB")
    if image.size != target:
        image = image.resize(target, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    if image_format == "png":
        image.save(buffer, format="PNG")
    else:
        image.save(buffer, format="WEBP" if image_format == "webp" else "JPEG", quality=quality)
    return buffer.getvalue()


def calibration_images(count: int, size: int, seed: int = 0) -> np.ndarray:
    """``count`` smooth random colour fields ``(count, size, size, 3)`` in [-1, 1] to fit on.

    Low-frequency colour (what a preview must get right) with some mid-frequency detail, plus
    flat greys so the bias is pinned down.
    """
    rng = np.random.default_rng(seed)
    images = np.empty((count, size, size, 3), dtype=np.float32)
    for index in range(count):
        coarse = rng.uniform(0, 255, (rng.integers(2, 6), rng.integers(2, 6), 3)).astype(np.uint8)
        smooth = np.asarray(Image.fromarray(coarse, "RGB").resize((size, size), Image.Resampling.BICUBIC))
        detail = rng.normal(0, 12, (size // CELL, size // CELL, 3))
        detail = np.kron(detail, np.ones((CELL, CELL, 1)))
        images[index] = np.clip((smooth + detail) / 127.5 - 1.0, -1, 1)
    images[-1] = rng.uniform(-0.5, 0.5)  # one flat image
    return images
