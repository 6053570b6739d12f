"""Client-side validation (the server's rules, the field named) and how the Run body is built."""

from __future__ import annotations

import pytest

from fluxserve.client.errors import ValidationFailed
from fluxserve.client.inputs import builtin_spec, prepare_run, spec_from_tool
from fluxserve.client.models import Tool

KREA = "black-forest-labs/FLUX.1-Krea-dev"
KONTEXT = "wiro/flux_kontext_dev_with_2_image"


def test_builtin_tools_are_known():
    assert builtin_spec(KREA) is not None
    assert builtin_spec("someone/else") is None


def test_values_are_sent_as_wire_strings():
    payload = prepare_run(builtin_spec(KREA), {"prompt": "a fox", "steps": 4, "scale": 4.5, "seed": 7})
    assert payload.fields == {"prompt": "a fox", "steps": "4", "scale": "4.5", "seed": "7"}
    assert payload.files == {}


def test_callback_url_goes_as_callbackUrl():
    payload = prepare_run(builtin_spec(KREA), {"prompt": "x"}, callback_url="http://example.com/hook")
    assert payload.fields["callbackUrl"] == "http://example.com/hook"


@pytest.mark.parametrize(
    ("inputs", "field", "words"),
    [
        ({"prompt": "x", "width": 1000}, "width", "multiple of 16"),
        ({"prompt": "x", "steps": "many"}, "steps", "integer or float"),
        ({"prompt": "x", "samples": 9}, "samples", "between 1 and 4"),
        ({"prompt": "x", "scale": "abc"}, "scale", "integer or float"),
        ({"prompt": ""}, "prompt", "required"),
        ({"prompt": "x", "stepz": 4}, "stepz", "not an input"),
    ],
)
def test_invalid_inputs_name_the_field(inputs, field, words):
    with pytest.raises(ValidationFailed) as caught:
        prepare_run(builtin_spec(KREA), inputs)
    assert [item.field for item in caught.value.fields] == [field]
    assert field in str(caught.value) and words in str(caught.value)
    assert caught.value.status == 0  # caught before any request


def test_every_problem_is_reported_at_once():
    with pytest.raises(ValidationFailed) as caught:
        prepare_run(builtin_spec(KREA), {"prompt": "x", "width": 1000, "height": 5})
    assert {item.field for item in caught.value.fields} == {"width", "height"}


def test_validation_can_be_skipped():
    payload = prepare_run(builtin_spec(KREA), {"prompt": "x", "width": 1000}, check=False)
    assert payload.fields["width"] == "1000"


def test_kontext_local_paths_become_file_parts(tmp_path):
    first, second = tmp_path / "dog.png", tmp_path / "couch.jpg"
    first.write_bytes(b"\x89PNG first")
    second.write_bytes(b"\xff\xd8 second")
    payload = prepare_run(
        builtin_spec(KONTEXT),
        {"prompt": "put the dog on the couch", "inputImageUrl": str(first), "inputImage2Url": second},
    )
    assert set(payload.files) == {"inputImage", "inputImage2"}
    assert payload.files["inputImage"].content == b"\x89PNG first"
    assert payload.files["inputImage"].filename == "dog.png"
    assert payload.files["inputImage2"].content_type == "image/jpeg"
    assert "inputImageUrl" not in payload.fields and "inputImage2Url" not in payload.fields


def test_kontext_urls_stay_fields():
    first, second = "https://example.com/a.png", "https://example.com/b.png"
    payload = prepare_run(
        builtin_spec(KONTEXT), {"prompt": "p", "inputImageUrl": first, "inputImage2Url": second}
    )
    assert payload.fields["inputImageUrl"] == first and payload.fields["inputImage2Url"] == second
    assert payload.files == {}


def test_kontext_needs_both_images(tmp_path):
    image = tmp_path / "one.png"
    image.write_bytes(b"png")
    with pytest.raises(ValidationFailed) as caught:
        prepare_run(builtin_spec(KONTEXT), {"prompt": "p", "inputImageUrl": image})
    assert [item.field for item in caught.value.fields] == ["inputImage2"]  # the file input's id


def test_missing_local_file_is_reported(tmp_path):
    with pytest.raises(ValidationFailed, match="cannot read file"):
        prepare_run(builtin_spec(KONTEXT), {"prompt": "p"}, files={"inputImage": tmp_path / "nope.png"})


def hosted_tool() -> Tool:
    return Tool.from_wire(
        {
            "slugowner": "someone",
            "slugproject": "upscaler",
            "inputs": [
                {"name": "inputImageUrl", "type": "text", "default": ""},
                {"name": "factor", "type": "number", "default": 2},
                {"name": "strength", "type": "float", "default": 0.5},
                {
                    "name": "mode",
                    "type": "select",
                    "default": "fast",
                    "options": [{"value": "fast"}, {"value": "best"}],
                },
                {"name": "badDefault", "type": "select", "default": "zzz", "options": [{"value": "a"}]},
            ],
        }
    )


def test_inferred_rules_for_other_tools(tmp_path):
    spec = spec_from_tool(hosted_tool())
    assert spec.tool == "someone/upscaler"
    assert prepare_run(spec, {"factor": "3", "mode": "best"}, full_rules=False).fields == {
        "factor": "3",
        "mode": "best",
    }
    for inputs, field in [
        ({"factor": 2.5}, "factor"),
        ({"strength": "x"}, "strength"),
        ({"mode": "slow"}, "mode"),
    ]:
        with pytest.raises(ValidationFailed) as caught:
            prepare_run(spec, inputs, full_rules=False)
        assert caught.value.fields[0].field == field
    image = tmp_path / "in.png"
    image.write_bytes(b"png")
    assert set(prepare_run(spec, {"inputImageUrl": str(image)}, full_rules=False).files) == {"inputImage"}
