"""The latent preview projection: fitting, token layout, encoding, and calibration on tiny weights."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fluxserve.engines.latent_preview import (
    BLOCK_VALUES,
    calibration_images,
    cell_blocks,
    encode_preview,
    fit_projection,
    project,
    token_grid,
)


def test_fit_recovers_a_linear_map() -> None:
    rng = np.random.default_rng(1)
    true_matrix, true_bias = rng.normal(size=(16, BLOCK_VALUES)), rng.normal(size=BLOCK_VALUES)
    tokens = rng.normal(size=(500, 16))
    projection = fit_projection(tokens, tokens @ true_matrix + true_bias)
    assert np.allclose(projection.matrix, true_matrix, atol=1e-2)
    assert np.allclose(projection.bias, true_bias, atol=1e-2)


def test_projection_places_each_token_block_where_cell_blocks_took_it() -> None:
    """Round trip: blocks of an image, used as tokens with an identity projection, give its cells back."""
    image = calibration_images(2, 64, seed=3)[0]  # (64, 64, 3) in [-1, 1]
    blocks = cell_blocks(image)
    identity = fit_projection(
        np.vstack([blocks, -blocks, blocks * 0.5]), np.vstack([blocks, -blocks, blocks * 0.5])
    )
    rows, cols = token_grid(64, 64)
    rgb = project(blocks, rows, cols, identity)
    cells = image.reshape(8, 8, 8, 8, 3).mean(axis=(1, 3))
    expected = np.clip((cells + 1) * 127.5, 0, 255)
    assert rgb.shape == (8, 8, 3) and np.abs(rgb - expected).max() <= 2


def test_fit_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError):
        fit_projection(np.zeros((10, 4)), np.zeros((9, BLOCK_VALUES)))


@pytest.mark.parametrize(("fmt", "pil"), [("jpeg", "JPEG"), ("webp", "WEBP"), ("png", "PNG")])
def test_encode_preview_scales_to_the_image_size_capped_at_256(fmt: str, pil: str) -> None:
    rgb = np.zeros((128, 96, 3), dtype=np.uint8)
    small = Image.open(io.BytesIO(encode_preview(rgb[:8, :6], (48, 64), fmt)))
    assert small.format == pil and small.size == (48, 64)
    large = Image.open(io.BytesIO(encode_preview(rgb, (768, 1024), fmt)))
    assert large.size == (192, 256)


def test_calibrated_projection_on_tiny_flux1_and_flux2(tiny_weights_dir) -> None:
    """The fit runs on each VAE family; previews of the pipelines' own token layout have the right size."""
    import torch
    from diffusers import FluxPipeline

    from fluxserve.engines.preview_calibration import preview_source, projection_for

    pipe = FluxPipeline.from_pretrained(str(tiny_weights_dir / "black-forest-labs/FLUX.1-Krea-dev"))
    projection = projection_for(pipe)
    assert projection.token_dim == 16 and projection_for(pipe) is projection  # fitted once per VAE
    latents = torch.randn(1, 4 * 5, 16)  # 64x80 image: 4 x 5 tokens
    rgb = preview_source(pipe, latents, 64, 80)()
    assert rgb.shape == (8, 10, 3) and rgb.dtype == np.uint8
    assert preview_source(pipe, torch.randn(1, 7, 16), 64, 80)() is None  # unexpected layout: no preview
