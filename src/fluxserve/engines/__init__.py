"""Inference: diffusers FLUX pipelines, shared components, LoRA adapters, the BFL partner client.

Never imports ``api``, ``tasks`` or SQL: engines receive plain dataclasses and return images.
"""
