"""Latent previews for diffusers FLUX pipelines: the per-VAE projection and the step's preview source.

The projection of :mod:`fluxserve.engines.latent_preview` is fitted once per VAE (kept on the VAE
object, so every pipeline sharing it shares the fit): a dozen small synthetic images are encoded
exactly as the pipeline packs its latents (FLUX.1: ``(z - shift) * scale``, 2x2-packed; FLUX.2:
2x2-patchified, batch-norm normalised), and tokens are regressed onto the images' colours. That
is a one-off cost of a few small encodes; each preview afterwards is one matrix product.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from fluxserve.engines.latent_preview import (
    Projection,
    calibration_images,
    cell_blocks,
    fit_projection,
    project,
    token_grid,
)

log = logging.getLogger(__name__)

CALIBRATION_IMAGES = 12
CALIBRATION_SIZE = 128
_ATTRIBUTE = "_fluxserve_preview_projection"
_lock = threading.Lock()


def projection_for(pipe: Any) -> Projection:
    """The pipeline's VAE's projection, fitted on first use."""
    vae = pipe.vae
    found = getattr(vae, _ATTRIBUTE, None)
    if found is not None:
        return found
    with _lock:
        found = getattr(vae, _ATTRIBUTE, None)
        if found is None:
            found = _calibrate(pipe)
            setattr(vae, _ATTRIBUTE, found)
    return found


def _calibrate(pipe: Any) -> Projection:
    import torch

    images = calibration_images(CALIBRATION_IMAGES, CALIBRATION_SIZE)
    vae = pipe.vae
    parameter = next(vae.parameters())
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).to(parameter.device, parameter.dtype)
    with torch.inference_mode():
        tokens = _flux2_tokens(pipe, batch) if hasattr(vae, "bn") else _flux1_tokens(pipe, batch)
    tokens_np = tokens.float().cpu().numpy().reshape(-1, tokens.shape[-1])
    blocks = np.concatenate([cell_blocks(image) for image in images])
    projection = fit_projection(tokens_np, blocks)
    log.info(
        "latent preview projection fitted for %s (%d-value tokens)", type(vae).__name__, tokens.shape[-1]
    )
    return projection


def _flux1_tokens(pipe: Any, batch: Any) -> Any:
    vae = pipe.vae
    latents = vae.encode(batch).latent_dist.mode()
    latents = (latents - vae.config.shift_factor) * vae.config.scaling_factor
    size, channels, height, width = latents.shape
    latents = latents.view(size, channels, height // 2, 2, width // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return latents.reshape(size, (height // 2) * (width // 2), channels * 4)


def _flux2_tokens(pipe: Any, batch: Any) -> Any:
    latents = pipe._encode_vae_image(batch, generator=None)  # patchified and normalised
    size, channels, height, width = latents.shape
    return latents.reshape(size, channels, height * width).permute(0, 2, 1)


def preview_source(
    pipe: Any, latents: Any, height: int, width: int, row: int = 0
) -> Callable[[], np.ndarray | None]:
    """What the step callback hands on: computes the RGB preview of ``latents[row]`` (one batch
    row: a batched call previews each task's first image) only when called."""

    def make() -> np.ndarray | None:
        rows, cols = token_grid(height, width)
        first = latents[row]
        if first.ndim != 2 or first.shape[0] != rows * cols:
            return None  # an unexpected layout: no preview rather than a wrong one
        projection = projection_for(pipe)
        if first.shape[1] != projection.token_dim:
            return None
        return project(first.detach().float().cpu().numpy(), rows, cols, projection)

    return make
