"""Tiny, randomly initialised FLUX.1 weights built in code, for tests and offline demos.

The folder has the very layout of a user's folder of real weights (see :mod:`fluxserve.engines.weights`)::

    <root>/black-forest-labs/FLUX.1-Krea-dev/     full diffusers FluxPipeline folder
    <root>/black-forest-labs/FLUX.1-dev/          full diffusers FluxPipeline folder
    <root>/black-forest-labs/FLUX.1-Kontext-dev/  full diffusers FluxKontextPipeline folder
    <root>/<owner>/<repo>/<file>.safetensors      one tiny LoRA per catalog LoRA (catalog/lora.py)

Which pipelines: every FLUX.1 repo an engine's spec declares with a ``tiny_seed`` (the seed of its
tiny transformer), built as the spec's pipeline class; the specs' ``tiny_extra`` builders add the rest.

The three pipelines share byte-identical text encoders, tokenizers, VAE and scheduler (as the real
repos do); only the transformers differ (one seed each). Everything is seeded, so two builds give
identical weights. The VAE keeps the real 8x downscale (four levels) so 64-2048 px sizes that are
multiples of 16 work, while a 128x128 4-step generation takes a fraction of a second on one CPU core.

Builds are idempotent (models already present are skipped) and atomic (each model is written to a
temporary folder and renamed into place), so a crashed build never leaves a half folder.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fluxserve.engines.spec import ModelRepo

log = logging.getLogger(__name__)

TINY_MARKER = "fluxserve-tiny.json"
"""Written in every tiny pipeline folder, so that code and people can tell tiny weights from real ones."""

TINY_VERSION = 1

LORA_BASE_REPO = "black-forest-labs/FLUX.1-dev"
"""The tiny transformer whose shapes the tiny LoRAs fit."""

# Tiny architecture. joint_attention_dim = T5 width, pooled_projection_dim = CLIP width,
# in_channels = 4 * VAE latent channels (2x2 packing), sum(axes_dims_rope) = attention_head_dim.
LATENT_CHANNELS = 4
TEXT_DIM = 32
TRANSFORMER_CONFIG: dict[str, Any] = {
    "patch_size": 1,
    "in_channels": 4 * LATENT_CHANNELS,
    "num_layers": 1,
    "num_single_layers": 1,
    "attention_head_dim": 16,
    "num_attention_heads": 2,
    "joint_attention_dim": TEXT_DIM,
    "pooled_projection_dim": TEXT_DIM,
    "guidance_embeds": True,
    "axes_dims_rope": (4, 4, 8),
}
SCHEDULER_CONFIG: dict[str, Any] = {  # the real FLUX.1-dev scheduler settings
    "base_image_seq_len": 256,
    "base_shift": 0.5,
    "max_image_seq_len": 4096,
    "max_shift": 1.15,
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,
}
T5_MAX_LENGTH = 512
_WORDS = ("a", "an", "the", "of", "and", "in", "on", "with", "cat", "dog", "man", "woman", "photo", "style")


def build_tiny_weights(root: Path) -> Path:
    """Build every tiny model and LoRA missing under ``root``; return ``root``. Safe to call again."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    from fluxserve.engines.spec import engine_specs, resolve

    shared: dict[str, Any] | None = None
    for repo in tiny_models():
        target = root / repo.id
        if (target / "model_index.json").is_file():
            continue
        if shared is None:
            shared = _shared_components()
        log.info("building tiny %s in %s", repo.id, target)
        _atomic_write(
            target, functools.partial(_save_pipeline, repo=repo.id, seed=repo.tiny_seed, shared=shared)
        )
    for spec in engine_specs().values():  # files beside the pipelines, e.g. the catalog's tiny LoRAs
        if spec.tiny_extra:
            resolve(spec.tiny_extra)(root)
    return root


def tiny_models() -> list[ModelRepo]:
    """The FLUX.1 repos that engines declare with a tiny transformer seed (see engines/spec.py)."""
    from fluxserve.engines.spec import model_repos

    return [repo for repo in model_repos().values() if repo.tiny_seed is not None]


def _tiny_seed(repo_id: str) -> int:
    from fluxserve.engines.spec import model_repo

    seed = model_repo(repo_id).tiny_seed
    if seed is None:
        raise ValueError(f"no engine declares a tiny model of {repo_id}")
    return seed


def make_tiny_cli(directory: str | os.PathLike[str]) -> Path:
    """What ``fluxserve make-tiny DIR`` runs: build (or complete) the tiny weights folder at DIR."""
    path = build_tiny_weights(Path(directory).expanduser().resolve())
    log.info("tiny FLUX.1 weights ready in %s", path)
    return path


def is_tiny(folder: Path) -> bool:
    """True if ``folder`` is a pipeline folder written by :func:`build_tiny_weights`."""
    return (Path(folder) / TINY_MARKER).is_file()


def _atomic_write(target: Path, write) -> None:
    """Run ``write(tmp_dir)`` then rename ``tmp_dir`` to ``target``; another builder may win the race."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        write(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.exists():
                raise
            log.info("%s was built concurrently; keeping that one", target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _shared_components() -> dict[str, Any]:
    """Text encoders, tokenizers, VAE and scheduler: built once, saved into every pipeline folder."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    tokenizer, tokenizer_2 = _clip_tokenizer(), _t5_tokenizer()
    torch.manual_seed(1)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=TEXT_DIM,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            projection_dim=TEXT_DIM,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            hidden_act="quick_gelu",
        )
    ).eval()
    torch.manual_seed(2)
    text_encoder_2 = T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer_2),
            d_model=TEXT_DIM,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            feed_forward_proj="gated-gelu",
            dropout_rate=0.0,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
    ).eval()
    torch.manual_seed(3)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=4,
        sample_size=128,
        scaling_factor=1.5035,
        shift_factor=0.0609,
        use_quant_conv=False,
        use_post_quant_conv=False,
    ).eval()
    scheduler = FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIG)
    return {
        "scheduler": scheduler,
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "text_encoder_2": text_encoder_2,
        "tokenizer_2": tokenizer_2,
    }


def _tiny_transformer(seed: int):
    import torch
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(seed)
    return FluxTransformer2DModel(**TRANSFORMER_CONFIG).eval()


def _save_pipeline(folder: Path, repo: str, seed: int, shared: dict[str, Any]) -> None:
    import diffusers

    from fluxserve.engines.spec import model_repo

    cls = getattr(diffusers, model_repo(repo).pipeline)  # the pipeline class the engine's spec names
    pipe = cls(**shared, transformer=_tiny_transformer(seed))
    pipe.save_pretrained(folder, safe_serialization=True)
    marker = {"fluxserve_tiny_version": TINY_VERSION, "repo": repo, "transformer_seed": seed}
    (folder / TINY_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def _clip_tokenizer():
    """A byte-level BPE CLIP tokenizer: every byte is a token, plus a few merges for common words."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in bytes_to_unicode().values():
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(char + "</w>", len(vocab))
    merges: list[tuple[str, str]] = []
    for word in _WORDS:
        pieces = [*word[:-1], word[-1] + "</w>"]
        while len(pieces) > 1:
            merged = pieces[0] + pieces[1]
            merges.append((pieces[0], pieces[1]))
            vocab.setdefault(merged, len(vocab))
            pieces = [merged, *pieces[2:]]
    merges = list(dict.fromkeys(merges))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def _t5_tokenizer():
    """A unigram T5 tokenizer: ids 0/1/2 = pad, eos, unk, then letters, digits and a few words."""
    from transformers import T5TokenizerFast

    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'\"-:;()"
    pieces += [(char, -5.0) for char in chars]
    pieces += [("▁" + char, -4.0) for char in chars]
    pieces += [("▁" + word, -1.0) for word in _WORDS]
    return T5TokenizerFast(vocab=pieces, extra_ids=0, model_max_length=T5_MAX_LENGTH)


LORA_TARGETS = (
    "attn.to_q",
    "attn.to_k",
    "attn.to_v",
    "attn.to_out.0",
    "attn.add_q_proj",
    "attn.add_k_proj",
    "attn.add_v_proj",
    "attn.to_add_out",
    "ff.net.2",
    "proj_mlp",
    "proj_out",
)
"""Module name suffixes (inside the transformer blocks) that the tiny LoRAs adapt, as FLUX LoRAs do."""


def tiny_lora_state_dict(seed: int, rank: int = 4, strength: float = 0.5) -> dict[str, Any]:
    """A LoRA for the tiny transformer in diffusers/PEFT key format, with non-zero A and B matrices.

    Keys look like ``transformer.transformer_blocks.0.attn.to_q.lora_A.weight`` ([rank, in]) and
    ``...lora_B.weight`` ([out, rank]), the format diffusers' ``load_lora_weights`` reads.
    """
    import torch

    transformer = _tiny_transformer(_tiny_seed(LORA_BASE_REPO))
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, Any] = {}
    for name, module in transformer.named_modules():
        if (
            not isinstance(module, torch.nn.Linear)
            or "blocks." not in name
            or not name.endswith(LORA_TARGETS)
        ):
            continue
        key = f"transformer.{name}"
        lora_a = torch.randn(rank, module.in_features, generator=generator) * strength
        lora_b = torch.randn(module.out_features, rank, generator=generator) * strength
        state[f"{key}.lora_A.weight"] = lora_a.contiguous()
        state[f"{key}.lora_B.weight"] = lora_b.contiguous()
    return state


def write_tiny_lora(path: Path, seed: int) -> Path:
    """Write a tiny LoRA safetensors file at ``path`` atomically (temp file + rename)."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        save_file(
            tiny_lora_state_dict(seed), tmp, metadata={"format": "pt"}
        )  # one key: multi-key order is random
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def build_tiny_loras(root: Path) -> None:
    """One tiny LoRA per catalog entry, where the catalog says its weights live: <root>/<repo>/<file>."""
    from fluxserve.catalog.lora import load_lora_catalog

    for index, entry in enumerate(load_lora_catalog()):
        target = root / entry.repo / entry.weight_name
        if not target.is_file():
            write_tiny_lora(target, seed=100 + index)
