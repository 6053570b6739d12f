"""``black-forest-labs/flux-pro-1-1-ultra``: BFL's FLUX1.1 [pro] Ultra, or a local FLUX.1 stand-in.

How the backend is chosen: :mod:`fluxserve.engines.partner`. On BFL: ``POST /v1/flux-pro-1.1-ultra``
with the fields below. Locally: :mod:`fluxserve.engines.ultra_local` on FLUX.1-dev (or Krea-dev).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fluxserve.engines.bfl_engine import BflRoute
from fluxserve.engines.partner import FLUX1_DEV, PartnerTool, partner_engine_parts

ENGINE = "bfl-flux-pro-1.1-ultra"


def ultra_payload(params: Mapping[str, Any]) -> dict[str, Any]:
    """The tool's validated values -> the body of ``POST /v1/flux-pro-1.1-ultra`` (BFL's names)."""
    return {
        "prompt": params["prompt"],
        "prompt_upsampling": params["promptUpsampling"],
        "safety_tolerance": params["safetyTolerance"],
        "aspect_ratio": params["aspectRatio"],
        "seed": params["seed"],
        "output_format": params["outputFormat"],
    }


TOOL = PartnerTool(
    engine=ENGINE,
    slug="flux-pro-1-1-ultra",
    bfl=BflRoute("/v1/flux-pro-1.1-ultra", "flux-pro-1.1-ultra", ultra_payload),
    default_local=FLUX1_DEV,
    family="FLUX.1",
    local_factory="fluxserve.engines.ultra_local:build_local",
)


unavailable, build_engine, SPEC = partner_engine_parts(TOOL, __name__)
