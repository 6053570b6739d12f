"""``black-forest-labs/flux-2-pro-t2i``: BFL's FLUX.2 [pro], or local FLUX.2 weights as a stand-in.

How the backend is chosen: :mod:`fluxserve.engines.partner`. On BFL: ``POST /v1/flux-2-pro`` with
the fields below. Locally: :mod:`fluxserve.engines.flux2_local` (FLUX.2-dev, or a klein model).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fluxserve.engines.bfl_engine import BflRoute
from fluxserve.engines.partner import FLUX2_DEV, PartnerTool, partner_engine_parts

ENGINE = "bfl-flux-2-pro"


def flux2_pro_payload(params: Mapping[str, Any]) -> dict[str, Any]:
    """The tool's validated values -> the body of ``POST /v1/flux-2-pro`` (BFL's names)."""
    return {
        "prompt": params["prompt"],
        "width": params["width"],
        "height": params["height"],
        "safety_tolerance": params["safetyTolerance"],
        "seed": params["seed"],
        "output_format": params["outputFormat"],
    }


TOOL = PartnerTool(
    engine=ENGINE,
    slug="flux-2-pro-t2i",
    bfl=BflRoute("/v1/flux-2-pro", "flux-2-pro", flux2_pro_payload),
    default_local=FLUX2_DEV,
    family="FLUX.2",
    local_factory="fluxserve.engines.flux2_local:build_local",
)


unavailable, build_engine, SPEC = partner_engine_parts(TOOL, __name__)
