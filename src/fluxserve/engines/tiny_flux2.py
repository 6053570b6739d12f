"""Tiny, randomly initialised FLUX.2 weights, built in code so tests and demos run offline.

The result is a real diffusers folder (``model_index.json`` plus ``transformer/``, ``vae/``,
``text_encoder/``, ``tokenizer/``, ``scheduler/``) that ``Flux2Pipeline.from_pretrained`` loads
exactly as it loads ``black-forest-labs/FLUX.2-dev`` (and ``Flux2KleinPipeline`` a tiny
``FLUX.2-klein-4B``, with a Qwen3 text encoder); only the sizes differ. The images it makes
are noise, but every code path (chat-template tokenisation, the Mistral text encoder's hidden
layers, the transformer, the FLUX.2 VAE with its batch-norm latents) is the real one.

The tokenizer is byte-level BPE without merges (one token per byte, any text encodes), wrapped in
``PreTrainedTokenizerFast`` with a Mistral-style chat template, so that
``tokenizer.apply_chat_template(...)`` behaves like the real ``AutoProcessor``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path

from fluxserve.engines.tiny import TINY_MARKER

log = logging.getLogger(__name__)

TINY_FLUX2_REPO = "black-forest-labs/FLUX.2-dev"
TINY_KLEIN_REPO = "black-forest-labs/FLUX.2-klein-4B"
TINY_FLUX2_REPOS = (TINY_FLUX2_REPO, TINY_KLEIN_REPO)
"""FLUX.2-dev (Flux2Pipeline, Mistral 3 encoder) and klein (Flux2KleinPipeline, Qwen3 encoder)."""
TEXT_HIDDEN_SIZE = 16
TEXT_LAYERS = 3
TEXT_OUT_LAYERS = (1, 2, 3)
"""Which hidden states of the tiny text encoder the pipeline stacks (the real model uses 10, 20, 30)."""

_SPECIAL_TOKENS = [
    "<unk>",
    "<s>",
    "</s>",
    "<pad>",
    "[INST]",
    "[/INST]",
    "[SYSTEM_PROMPT]",
    "[/SYSTEM_PROMPT]",
]
_CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}{%- set open, close = '[SYSTEM_PROMPT]', '[/SYSTEM_PROMPT]' -%}"
    "{%- else -%}{%- set open, close = '[INST]', '[/INST]' -%}{%- endif -%}"
    "{{- open -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- close -}}"
    "{%- endfor -%}"
)
_BUILD_LOCK = threading.Lock()


def tiny_flux2_dir(weights_root: Path, repo: str = TINY_FLUX2_REPO) -> Path:
    """Where a tiny FLUX.2 folder lives under a weights root, in the hub's ``owner/name`` layout."""
    return weights_root / repo


def ensure_tiny_flux2(weights_root: Path, repo: str = TINY_FLUX2_REPO) -> Path:
    """Build the tiny ``repo`` folder under ``weights_root`` unless it is already there; return it.

    Built in a temporary sibling folder and renamed into place, so a half-written folder is never
    seen by another process that loads it at the same moment.
    """
    if repo not in TINY_FLUX2_REPOS:
        raise ValueError(f"no tiny weights for {repo}; tiny FLUX.2 models: {', '.join(TINY_FLUX2_REPOS)}")
    target = tiny_flux2_dir(weights_root, repo)
    with _BUILD_LOCK:
        if (target / "model_index.json").is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".tiny-flux2-", dir=target.parent))
        try:
            build_tiny_flux2_pipeline(repo).save_pretrained(scratch)
            marker = {"fluxserve_tiny_version": 1, "repo": repo}
            (scratch / TINY_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
            try:
                os.replace(scratch, target)
            except OSError:
                if not (target / "model_index.json").is_file():  # not a concurrent build that won
                    raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        log.info("built tiny %s weights in %s", repo, target)
        return target


def build_tiny_flux2_pipeline(repo: str = TINY_FLUX2_REPO):  # -> Flux2Pipeline | Flux2KleinPipeline
    """The tiny pipeline of ``repo``, with the same random components on every call (fixed seeds)."""
    import torch
    from diffusers import Flux2KleinPipeline, Flux2Pipeline

    klein = repo == TINY_KLEIN_REPO
    with torch.random.fork_rng():
        torch.manual_seed(1 if klein else 0)
        transformer = _tiny_transformer(guidance_embeds=not klein)  # klein is guidance-distilled
        text_encoder = _tiny_qwen3_encoder() if klein else _tiny_text_encoder()
        vae = _tiny_vae()
    if klein:
        return Flux2KleinPipeline(
            scheduler=_scheduler(),
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=build_tiny_tokenizer(),
            transformer=transformer,
            is_distilled=True,
        )
    return Flux2Pipeline(
        scheduler=_scheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=build_tiny_tokenizer(),
        transformer=transformer,
    )


def _tiny_transformer(guidance_embeds: bool = True):
    from diffusers import Flux2Transformer2DModel

    return Flux2Transformer2DModel(
        patch_size=1,
        in_channels=16,  # 4 VAE latent channels, patchified 2x2
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=TEXT_HIDDEN_SIZE * len(TEXT_OUT_LAYERS),
        timestep_guidance_channels=256,
        axes_dims_rope=(4, 4, 4, 4),
        guidance_embeds=guidance_embeds,
    )


def _tiny_vae():
    from diffusers import AutoencoderKLFlux2

    return AutoencoderKLFlux2(
        block_out_channels=(8, 8, 8, 8),  # four blocks: the real 8x spatial downsampling
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=64,
        mid_block_add_attention=False,
    )


def _tiny_text_encoder():
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration

    config = Mistral3Config(
        text_config={
            "model_type": "mistral",
            "vocab_size": 512,
            "hidden_size": TEXT_HIDDEN_SIZE,
            "intermediate_size": 32,
            "max_position_embeddings": 1024,
            "num_attention_heads": 4,
            "num_hidden_layers": TEXT_LAYERS,
            "num_key_value_heads": 2,
            "head_dim": 4,
            "rms_norm_eps": 1e-5,
            "sliding_window": None,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "pad_token_id": 3,
        },
        vision_config={
            "model_type": "pixtral",
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "intermediate_size": 32,
            "image_size": 32,
            "patch_size": 8,
            "num_channels": 3,
        },
        image_token_index=511,  # never produced by the tokenizer (264 tokens)
        image_seq_length=4,
        vision_feature_layer=-1,
    )
    return Mistral3ForConditionalGeneration(config).eval()


def _tiny_qwen3_encoder():
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(
        vocab_size=512,
        hidden_size=TEXT_HIDDEN_SIZE,
        intermediate_size=32,
        num_hidden_layers=TEXT_LAYERS,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=4,
        max_position_embeddings=1024,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
        tie_word_embeddings=True,
    )
    return Qwen3ForCausalLM(config).eval()


def build_tiny_tokenizer():  # -> transformers.PreTrainedTokenizerFast
    """Byte-level tokenizer (tokenizers library) with a Mistral-style chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {token: index for index, token in enumerate(_SPECIAL_TOKENS)}
    for char in sorted(alphabet):
        vocab.setdefault(char, len(vocab))
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(_SPECIAL_TOKENS)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        padding_side="right",
        model_max_length=1024,
        chat_template=_CHAT_TEMPLATE,
    )


def _scheduler():
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True)
