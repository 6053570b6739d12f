"""Coercion and validation of Wiro's loosely typed values against the catalog rules."""

from __future__ import annotations

import pytest

from fluxserve.catalog import Catalog
from fluxserve.catalog.coerce import split_multi_value, validate_inputs
from fluxserve.errors import NotFoundError, ValidationError

CATALOG = Catalog.builtin()
KREA = CATALOG.get("black-forest-labs/FLUX.1-Krea-dev")
ULTRA = CATALOG.get("black-forest-labs/flux-pro-1-1-ultra")
LORA = CATALOG.get("wiro/text-to-image-flux-lora-fast")
KONTEXT = CATALOG.get("wiro/flux_kontext_dev_with_2_image")


def _errors(tool, raw, files=frozenset()) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        validate_inputs(tool, raw, files)
    return {error.field: error.message for error in caught.value.errors}


def test_strings_and_numbers_coerce_to_the_inputs_types() -> None:
    values = validate_inputs(
        KREA, {"prompt": "p", "steps": "25.0", "scale": "4.5", "seed": "3572004920"}
    ).values
    assert values["steps"] == 25 and isinstance(values["steps"], int)
    assert values["scale"] == 4.5 and values["seed"] == 3572004920


def test_boolean_selects_accept_the_seeds_strings() -> None:
    assert (
        validate_inputs(ULTRA, {"prompt": "p", "promptUpsampling": "true"}).values["promptUpsampling"] is True
    )
    assert (
        validate_inputs(ULTRA, {"prompt": "p", "promptUpsampling": "false"}).values["promptUpsampling"]
        is False
    )
    assert (
        "'true' or 'false'"
        in _errors(ULTRA, {"prompt": "p", "promptUpsampling": "maybe"})["promptUpsampling"]
    )


def test_select_rejects_an_unknown_option_and_lists_the_allowed_ones() -> None:
    message = _errors(ULTRA, {"prompt": "p", "aspectRatio": "7:3"})["aspectRatio"]
    assert "'16:9'" in message and "'21:9'" in message and "'7:3'" in message


def test_safety_tolerance_range_follows_the_help_text() -> None:
    assert validate_inputs(ULTRA, {"prompt": "p", "safetyTolerance": "6"}).values["safetyTolerance"] == 6
    assert "between 0 and 6" in _errors(ULTRA, {"prompt": "p", "safetyTolerance": 7})["safetyTolerance"]


def test_a_boolean_is_not_a_number() -> None:
    assert "boolean" in _errors(KREA, {"prompt": "p", "steps": True})["steps"]


def test_seed_bounds_and_random_seed() -> None:
    assert validate_inputs(KREA, {"prompt": "p", "seed": str(2**64 - 1)}).values["seed"] == 2**64 - 1
    assert "from 0 to" in _errors(KREA, {"prompt": "p", "seed": 2**64})["seed"]
    first = validate_inputs(KREA, {"prompt": "p", "seed": ""}).values["seed"]
    assert isinstance(first, int) and first >= 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([], []),
        ("", []),
        ("678", ["678"]),
        (678, ["678"]),
        ("678, 1239", ["678", "1239"]),
        ('["1214"]', ["1214"]),
    ],
)
def test_multi_values_arrive_in_every_shape(value, expected) -> None:
    assert split_multi_value(value) == expected


def test_image_inputs_are_satisfied_by_an_uploaded_file_part() -> None:
    assert "prompt" not in _errors(KONTEXT, {"prompt": "p", "steps": "x"}, frozenset({"inputImage"}))


def test_unknown_tools_raise_not_found_listing_the_known_ones() -> None:
    with pytest.raises(NotFoundError) as caught:
        CATALOG.get("a/b")
    assert "black-forest-labs/FLUX.1-Krea-dev" in str(caught.value)


def test_lora_selection_defaults_to_no_adapter_when_absent() -> None:
    assert validate_inputs(LORA, {"prompt": "p"}).values["selectedLoraModel"] == []
