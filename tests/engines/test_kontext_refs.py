"""Multi-reference Kontext internals: sizes, placement, and parity with the stock pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import FluxKontextPipeline
from PIL import Image

from fluxserve.engines.kontext_refs import MultiReferenceKontextPipeline, reference_offsets, snap_size
from fluxserve.engines.weights import KONTEXT_DEV


@pytest.mark.parametrize(
    ("size", "max_area", "expected"),
    [
        ((96, 64), 1024 * 1024, (96, 64)),  # already FLUX-friendly and small: unchanged
        ((100, 70), 1024 * 1024, (96, 64)),  # small: nearest multiples of 16, not upscaled
        ((1000, 700), 1024 * 1024, (992, 704)),
        ((1920, 1080), 1024 * 1024, (1360, 768)),
        ((4000, 3000), 1024 * 1024, (1168, 880)),  # large: scaled down to the cap
        ((256, 128), 64 * 64, (80, 32)),
        ((5000, 100), 1024 * 1024, (1408, 352)),  # aspect limited to 4:1
        ((7, 5), 1024 * 1024, (16, 16)),
    ],
)
def test_snap_size(size: tuple[int, int], max_area: int, expected: tuple[int, int]) -> None:
    width, height = snap_size(*size, max_area=max_area)
    assert (width, height) == expected
    assert width % 16 == 0 and height % 16 == 0
    if size[0] * size[1] > max_area:
        assert width * height <= max_area


def test_reference_offsets_follow_comfyui_offset_method() -> None:
    assert reference_offsets([(4, 6)]) == [(0, 0)]
    # A wide second reference goes below a wide first one; a tall one goes to its right.
    assert reference_offsets([(4, 6), (4, 6)]) == [(0, 0), (4, 0)]
    assert reference_offsets([(4, 6), (8, 2)]) == [(0, 0), (0, 6)]
    assert reference_offsets([(4, 4), (4, 4), (4, 4)]) == [(0, 0), (4, 0), (0, 4)]


def picture(width: int, height: int, seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


@pytest.fixture(scope="module")
def stock(tiny_weights_dir: Path) -> FluxKontextPipeline:
    pipe = FluxKontextPipeline.from_pretrained(tiny_weights_dir / KONTEXT_DEV)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run(pipe: FluxKontextPipeline, image: Image.Image | None, seed: int = 3) -> np.ndarray:
    return pipe(
        image=image,
        prompt="a cat",
        width=64,
        height=64,
        max_area=64 * 64,
        _auto_resize=False,
        num_inference_steps=2,
        guidance_scale=2.5,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
    ).images[0]


def test_one_reference_reproduces_the_stock_pipeline(stock: FluxKontextPipeline) -> None:
    image = picture(64, 64, 1)
    multi = MultiReferenceKontextPipeline(**stock.components)
    multi.set_progress_bar_config(disable=True)
    assert multi.transformer is stock.transformer and multi.vae is stock.vae
    multi.references = multi.encode_references([image])
    np.testing.assert_allclose(run(multi, None), run(stock, image), atol=1e-6)


def test_two_references_are_placed_apart_and_both_count(stock: FluxKontextPipeline) -> None:
    multi = MultiReferenceKontextPipeline(**stock.components)
    multi.set_progress_bar_config(disable=True)
    first, second, other = picture(96, 64, 1), picture(32, 96, 2), picture(32, 96, 3)
    refs = multi.encode_references([first, second])
    assert refs.sizes == ((96, 64), (32, 96))
    assert refs.latents.shape[:2] == (1, 4 * 6 + 6 * 2)
    ids = refs.ids
    assert torch.all(ids[:, 0] == 1)
    # first (4x6 tokens): rows 0-3, columns 0-5; second (6x2, tall) to its right: columns 6-7.
    assert ids[:24, 1].max() == 3 and ids[:24, 2].max() == 5
    assert ids[24:, 1].min() == 0 and ids[24:, 1].max() == 5
    assert ids[24:, 2].min() == 6 and ids[24:, 2].max() == 7
    multi.references = refs
    base = run(multi, None)
    multi.references = multi.encode_references([first, other])
    changed = run(multi, None)
    assert np.abs(base - changed).max() > 1e-4
