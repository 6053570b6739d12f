"""The server-wide cap on how much one task may ask for (the queue cap lives in the store)."""

from __future__ import annotations

from typing import Any

from fluxserve.errors import FieldError, ValidationError


def check_task_size(values: dict[str, Any], max_pixels: int) -> None:
    """Refuse width × height × samples over ``max_pixels`` (0 = no cap).

    Only tools with ``width``/``height`` inputs are measured; the others size their outputs
    themselves (Kontext ≈ 1 MP, the ultra model's aspect ratios ≈ 4 MP).
    """
    if not max_pixels or "width" not in values or "height" not in values:
        return
    width, height = int(values["width"]), int(values["height"])
    samples = int(values.get("samples") or 1)
    pixels = width * height * samples
    if pixels > max_pixels:
        raise ValidationError(
            [
                FieldError(
                    "width",
                    f"width x height x samples = {width} x {height} x {samples} = {pixels} pixels is over "
                    f"this server's limit of {max_pixels} pixels per task (FLUXSERVE_MAX_TASK_PIXELS); "
                    "ask for a smaller size or fewer samples",
                )
            ]
        )
