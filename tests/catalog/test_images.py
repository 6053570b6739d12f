"""Image references: a stored task's image inputs rebuilt as ImageRefs (pure, no server)."""

from __future__ import annotations

from fluxserve.catalog import Catalog
from fluxserve.catalog.images import ImageRef, image_inputs, image_refs

KONTEXT = Catalog.builtin().get("wiro/flux_kontext_dev_with_2_image")


def test_the_kontext_tool_has_two_image_inputs_in_order() -> None:
    assert image_inputs(KONTEXT) == ["inputImageUrl", "inputImage2Url"]
    assert image_inputs(Catalog.builtin().get("black-forest-labs/FLUX.1-Krea-dev")) == []


def test_stored_files_win_over_url_values_and_empty_inputs_have_no_reference() -> None:
    values = {"inputImageUrl": "http://h/v1/File/k/room.png", "inputImage2Url": "https://x.test/dog.png"}
    refs = image_refs(KONTEXT, values, {"inputImageUrl": "uploads/1/room.png"})
    assert refs == {
        "inputImageUrl": ImageRef("inputImageUrl", storage_key="uploads/1/room.png"),
        "inputImage2Url": ImageRef("inputImage2Url", url="https://x.test/dog.png"),
    }
    assert refs["inputImageUrl"].stored and not refs["inputImage2Url"].stored
    assert image_refs(KONTEXT, {"inputImageUrl": "", "inputImage2Url": ""}, {}) == {}
