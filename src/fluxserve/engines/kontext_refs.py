"""Several reference images for FLUX.1 Kontext, each encoded on its own and placed side by side.

``FluxKontextPipeline`` conditions on one reference image: its VAE latents are packed into tokens
and appended to the noisy latent tokens, with position ids whose first axis is 1 (the output's is
0). Here every reference is resized and encoded separately, and all of them are appended, each
with its own rows/columns on the reference plane (index 1), shifted so that they do not overlap:
the placement of ComfyUI's chained ``ReferenceLatent`` nodes (``ref_latents_method="offset"``).
diffusers' community ``pipeline_flux_kontext_multiple_images`` follows the same idea but forces
every reference to the first one's size and shifts columns only. Here each reference keeps its
own aspect ratio and resolution, and the model sees them as distinct images (no seam, no
shared VAE context), which stitching them into one picture would not give.

The only internal we replace is :meth:`FluxKontextPipeline.prepare_latents` (via a subclass built
from the very same modules, so nothing is copied or cast): the noise is drawn exactly as the
stock pipeline draws it, and the rest of ``__call__`` (timesteps, guidance, denoising loop,
callbacks, decoding) is the stock code.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from PIL import Image

MULTIPLE = 16
"""FLUX sizes are multiples of 16: 8x VAE downscale, then 2x2 packing into tokens."""

KONTEXT_MAX_AREA = 1024 * 1024
"""Kontext was trained around one megapixel (its preferred resolutions span 672x1568..1568x672)."""


def snap_size(width: int, height: int, max_area: int = KONTEXT_MAX_AREA) -> tuple[int, int]:
    """A FLUX-friendly ``(width, height)`` close to ``width x height`` with the same aspect ratio.

    Larger images are scaled down to fit ``max_area`` (rounded down to multiples of 16, so the cap
    holds); smaller ones keep their size, rounded to the nearest multiple of 16 (never upscaled to
    the cap). The aspect ratio is limited to 4:1 either way, beyond which FLUX breaks down.
    """
    if width < 1 or height < 1:
        raise ValueError(f"an image of {width}x{height} pixels has no area")
    ratio = min(max(width / height, 1 / 4), 4.0)
    area = min(width * height, max_area)
    exact_w, exact_h = math.sqrt(area * ratio), math.sqrt(area / ratio)
    snap = math.floor if width * height > max_area else round
    new_w = max(MULTIPLE, int(snap(exact_w / MULTIPLE)) * MULTIPLE)
    new_h = max(MULTIPLE, int(snap(exact_h / MULTIPLE)) * MULTIPLE)
    return new_w, new_h


def reference_offsets(grids: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Where each reference goes on the reference plane, as ``(row, column)`` token offsets.

    ``grids`` are the references' ``(rows, columns)`` in tokens. Same rule as ComfyUI's "offset"
    method: each next reference goes to the right of everything placed so far when that keeps the
    occupied area closer to square, else below it.
    """
    height = width = 0
    offsets: list[tuple[int, int]] = []
    for rows, cols in grids:
        row_offset = col_offset = 0
        if rows + height > cols + width:
            col_offset = width
        else:
            row_offset = height
        height = max(height, rows + row_offset)
        width = max(width, cols + col_offset)
        offsets.append((row_offset, col_offset))
    return offsets


@dataclass(frozen=True)
class References:
    """Packed reference tokens ``(1, n, 4*C)`` and their position ids ``(n, 3)``."""

    latents: torch.Tensor
    ids: torch.Tensor
    sizes: tuple[tuple[int, int], ...]  # (width, height) each reference was encoded at


def __getattr__(name: str) -> Any:
    """``MultiReferenceKontextPipeline`` is built on first use: the engine specs are read by importing
    every engine module, and that must not import torch or diffusers (see engines/spec.py)."""
    if name == "MultiReferenceKontextPipeline":
        return _pipeline_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _pipeline_class() -> type:
    import torch
    from diffusers import FluxKontextPipeline
    from PIL import Image

    class MultiReferenceKontextPipeline(FluxKontextPipeline):
        """``FluxKontextPipeline`` whose reference tokens come from :attr:`references`.

        Build it from a loaded pipeline's modules (``MultiReferenceKontextPipeline(**pipe.components)``)
        for one run, set :attr:`references` with :meth:`encode_references`, then call it with
        ``image=None``.
        """

        references: References | None = None

        @torch.no_grad()
        def encode_references(
            self, images: list[Image.Image], max_area: int = KONTEXT_MAX_AREA
        ) -> References:
            """Resize each image to its own snapped size, VAE-encode it, pack it and place it."""
            device, dtype = self._execution_device, self.vae.dtype
            packed: list[torch.Tensor] = []
            grids: list[tuple[int, int]] = []
            sizes: list[tuple[int, int]] = []
            for image in images:
                width, height = snap_size(image.width, image.height, max_area)
                resized = image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
                pixels = self.image_processor.preprocess(resized, height, width)
                pixels = pixels.to(device=device, dtype=dtype)
                latents = self._encode_vae_image(pixels, generator=None)  # argmax: deterministic
                channels, lat_h, lat_w = latents.shape[1:]
                packed.append(self._pack_latents(latents, 1, channels, lat_h, lat_w))
                grids.append((lat_h // 2, lat_w // 2))
                sizes.append((width, height))
            offsets = reference_offsets(grids)
            ids = [
                _grid_ids(rows, cols, row_offset, col_offset)
                for (rows, cols), (row_offset, col_offset) in zip(grids, offsets, strict=True)
            ]
            return References(latents=torch.cat(packed, dim=1), ids=torch.cat(ids, dim=0), sizes=tuple(sizes))

        def prepare_latents(  # type: ignore[override]
            self,
            image: Any,
            batch_size: int,
            num_channels_latents: int,
            height: int,
            width: int,
            dtype: torch.dtype,
            device: torch.device,
            generator: torch.Generator | list[torch.Generator] | None = None,
            latents: torch.Tensor | None = None,
        ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
            noise, _, latent_ids, _ = super().prepare_latents(
                None, batch_size, num_channels_latents, height, width, dtype, device, generator, latents
            )
            if self.references is None:
                return noise, None, latent_ids, None
            image_latents = self.references.latents.to(device=device, dtype=dtype)
            image_latents = image_latents.expand(batch_size, -1, -1)
            return noise, image_latents, latent_ids, self.references.ids.to(device=device, dtype=dtype)

    MultiReferenceKontextPipeline.__qualname__ = "MultiReferenceKontextPipeline"
    return MultiReferenceKontextPipeline


def _grid_ids(rows: int, cols: int, row_offset: int, col_offset: int) -> torch.Tensor:
    """Position ids of one reference: (1, row + row_offset, column + col_offset) per token."""
    import torch

    ids = torch.zeros(rows, cols, 3)
    ids[..., 0] = 1
    ids[..., 1] = torch.arange(rows)[:, None] + row_offset
    ids[..., 2] = torch.arange(cols)[None, :] + col_offset
    return ids.reshape(rows * cols, 3)
