"""Which tools the OpenAI routes offer, under their slugs and short aliases."""

from __future__ import annotations

from dataclasses import dataclass

from fluxserve.api.openai.errors import OpenAIError
from fluxserve.catalog import Catalog
from fluxserve.catalog.model import ToolSpec
from fluxserve.errors import NotFoundError

ALIASES: dict[str, str] = {
    "flux-krea-dev": "black-forest-labs/FLUX.1-Krea-dev",
    "flux-1.1-pro-ultra": "black-forest-labs/flux-pro-1-1-ultra",
    "flux-2-pro": "black-forest-labs/flux-2-pro-t2i",
    "flux-dev-lora": "wiro/text-to-image-flux-lora-fast",
    "flux-kontext-dev": "wiro/flux_kontext_dev_with_2_image",
}
"""Short model names -> tool slugs. A tool's full slug (``owner/project``) works too."""

EDIT_TOOLS = frozenset({"wiro/flux_kontext_dev_with_2_image"})
"""Tools that take input images: they serve /v1/images/edits, the others /v1/images/generations."""

DEFAULT_GENERATION_MODEL = "flux-krea-dev"
DEFAULT_EDIT_MODEL = "flux-kontext-dev"


@dataclass(frozen=True)
class ImageModel:
    id: str  # the alias when there is one, else the slug
    spec: ToolSpec

    @property
    def edits(self) -> bool:
        return self.spec.tool in EDIT_TOOLS


def resolve_model(catalog: Catalog, name: str | None, edits: bool) -> ImageModel:
    """The tool a request's ``model`` names; NotFoundError (404) for an unknown one, 400 for the
    wrong endpoint (a generation model on /edits or the reverse)."""
    name = (name or "").strip() or (DEFAULT_EDIT_MODEL if edits else DEFAULT_GENERATION_MODEL)
    slug = ALIASES.get(name, name)
    try:
        spec = catalog.get(slug)
    except NotFoundError:
        raise OpenAIError(
            404,
            f"The model '{name}' does not exist. Image models: {', '.join(model_names(catalog))}.",
            param="model",
            code="model_not_found",
        ) from None
    model = ImageModel(_alias_of(spec.tool) or spec.tool, spec)
    if model.edits != edits:
        endpoint = "/v1/images/edits" if model.edits else "/v1/images/generations"
        raise OpenAIError(
            400, f"The model '{name}' is served at {endpoint}.", param="model", code="invalid_value"
        )
    return model


def _alias_of(slug: str) -> str | None:
    return next((alias for alias, target in ALIASES.items() if target == slug), None)


def model_names(catalog: Catalog) -> list[str]:
    return [_alias_of(spec.tool) or spec.tool for spec in catalog]


def models_list(catalog: Catalog, created: int) -> dict:
    """``GET /v1/models``: every tool as an OpenAI model object."""
    data = [
        {
            "id": _alias_of(spec.tool) or spec.tool,
            "object": "model",
            "created": created,
            "owned_by": spec.tool.split("/")[0],
        }
        for spec in catalog
    ]
    return {"object": "list", "data": data}
