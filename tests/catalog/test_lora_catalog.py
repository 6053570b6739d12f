"""The LoRA catalog data file and the LoRA tool's extra request rules (scales, trigger words)."""

from __future__ import annotations

import pytest

from fluxserve.catalog import Catalog
from fluxserve.catalog.coerce import validate_inputs
from fluxserve.catalog.lora import (
    apply_lora_rules,
    load_lora_catalog,
    lora_entry,
    prompt_with_triggers,
    validate_lora_scales,
)
from fluxserve.errors import ValidationError

LORA_TOOL = "wiro/text-to-image-flux-lora-fast"


def test_catalog_matches_the_seed_options_of_the_tool() -> None:
    options = Catalog.builtin().get(LORA_TOOL).input("selectedLoraModel").options
    entries = load_lora_catalog()
    assert (
        [entry.id for entry in entries]
        == [option["value"] for option in options]
        == ["678", "1239", "1236", "1328", "1214"]
    )
    for entry, option in zip(entries, options, strict=True):
        setting = option["generatesettings"][0]
        assert (entry.label, entry.description) == (option["label"], option["description"])
        assert list(entry.triggerwords) == option["triggerwords"]
        assert entry.scale.id == setting["id"]
        assert (entry.scale.min, entry.scale.max) == (float(setting["minvalue"]), float(setting["maxvalue"]))
        assert (entry.scale.default, entry.scale.step) == (
            float(setting["defaultvalue"]),
            float(setting["incrementby"]),
        )
        assert entry.repo.count("/") == 1 and entry.weight_name.endswith(".safetensors")
        assert entry.label.startswith(entry.repo)


def _validated(raw: dict):
    tool = Catalog.builtin().get(LORA_TOOL)
    raw = {"prompt": "a lion", **raw}
    return apply_lora_rules(tool, raw, validate_inputs(tool, raw))


def test_scales_default_and_are_read_from_the_setting_fields() -> None:
    result = _validated(
        {
            "selectedLoraModel": "678,1236",
            "Vintage-Comic-Book-Cover-Sci-fi-Pulp": "0.3",
            "WPAP-ART-Style": "9",
        }
    )  # not selected: ignored
    assert result.values["selectedLoraModel"] == ["678", "1236"]
    assert result.values["Movie-poster-style-LoRA-Flux-v1.0"] == 1.0
    assert result.values["Vintage-Comic-Book-Cover-Sci-fi-Pulp"] == 0.3
    assert result.parameters["Vintage-Comic-Book-Cover-Sci-fi-Pulp"] == "0.3"
    assert "WPAP-ART-Style" not in result.values


def test_empty_selection_means_the_base_model() -> None:
    for raw in ({}, {"selectedLoraModel": ""}, {"selectedLoraModel": []}, {"selectedLoraModel": "[]"}):
        assert _validated(raw).values["selectedLoraModel"] == []


def test_out_of_range_or_non_numeric_scale_names_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        _validated(
            {
                "selectedLoraModel": ["678", "1328"],
                "Movie-poster-style-LoRA-Flux-v1.0": "1.5",
                "WPAP-ART-Style": "strong",
            }
        )
    assert {error.field for error in caught.value.errors} == {
        "Movie-poster-style-LoRA-Flux-v1.0",
        "WPAP-ART-Style",
    }


def test_unknown_id_lists_the_valid_ids() -> None:
    with pytest.raises(ValidationError) as caught:
        _validated({"selectedLoraModel": "655"})  # the seed's default, which is not an option
    assert caught.value.errors[0].field == "selectedLoraModel"
    for lora_id in ("678", "1239", "1236", "1328", "1214"):
        assert lora_id in str(caught.value)
    with pytest.raises(ValidationError, match="Valid ids: '678'"):
        validate_lora_scales({}, ["655"])
    with pytest.raises(ValidationError, match="base model"):
        lora_entry("655")


def test_other_tools_are_left_alone() -> None:
    tool = Catalog.builtin().get("black-forest-labs/FLUX.1-Krea-dev")
    validated = validate_inputs(tool, {"prompt": "x"})
    assert apply_lora_rules(tool, {"prompt": "x", "WPAP-ART-Style": "7"}, validated) is validated


def test_trigger_words_go_in_front_unless_present() -> None:
    comic, poster = lora_entry("1236"), lora_entry("678")
    assert prompt_with_triggers("a lion", [comic]) == "vintage comic book cover, 1950s pulp art style, a lion"
    assert prompt_with_triggers("A VINTAGE COMIC BOOK COVER of a lion", [comic]) == (
        "1950s pulp art style, A VINTAGE COMIC BOOK COVER of a lion"
    )
    assert (
        prompt_with_triggers("FRESH IDEAS Movie poster style lion", [poster])
        == "FRESH IDEAS Movie poster style lion"
    )
    assert prompt_with_triggers("", [poster]) == "FRESH IDEAS Movie poster style"
    assert prompt_with_triggers("a lion", []) == "a lion"
