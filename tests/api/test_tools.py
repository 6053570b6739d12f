"""Tool/List and Tool/Detail: all five seed tools, inputs exactly as the seeds list them."""

from __future__ import annotations

import re

import pytest

from tests.support.seeds import seed_text
from tests.support.service import Service

TOOLS = [
    "black-forest-labs/FLUX.1-Krea-dev",
    "black-forest-labs/flux-pro-1-1-ultra",
    "black-forest-labs/flux-2-pro-t2i",
    "wiro/text-to-image-flux-lora-fast",
    "wiro/flux_kontext_dev_with_2_image",
]


def _seed_inputs(tool: str) -> list[tuple[str, str, str, str]]:
    """(name, label, type, default) of every input in the seed's flattened "Inputs" section."""
    text = seed_text(tool)
    section = re.search(r"## (?:Tool|Model) Inputs: (.*?) ## ", text, re.S).group(1)
    pattern = r"- name: (\S+) label: (.*?) help: .*? type: (\S+) default:(.*?)(?= options:| - name: |$)"
    return [(n, lbl.strip(), t, d.strip().strip('"')) for n, lbl, t, d in re.findall(pattern, section, re.S)]


def test_tool_list_has_the_five_seed_tools(queue_only_service: Service) -> None:
    body = queue_only_service.post("/v1/Tool/List", json={}).json()
    assert body["result"] is True
    assert sorted(tool["title"] for tool in body["tool"]) == sorted(TOOLS)
    assert body["total"] == "5"


@pytest.mark.parametrize("tool", TOOLS)
def test_tool_detail_inputs_match_the_seed(queue_only_service: Service, tool: str) -> None:
    owner, project = tool.split("/")
    body = queue_only_service.post(
        "/v1/Tool/Detail", json={"slugowner": owner, "slugproject": project}
    ).json()
    inputs = body["tool"][0]["inputs"]
    expected = _seed_inputs(tool)
    assert [i["name"] for i in inputs] == [name for name, *_ in expected]
    for item, (name, label, kind, default) in zip(inputs, expected, strict=True):
        assert (item["label"], item["type"]) == (label, kind), name
        if len(default) < 200:  # long prompts are checked by prefix (the seed text is folded)
            assert item["default"] == default, name
        else:
            assert default.startswith(item["default"][:100]), name
        assert "rules" not in item


def test_lora_options_carry_trigger_words_and_scale_settings(queue_only_service: Service) -> None:
    body = queue_only_service.post(
        "/v1/Tool/Detail", json={"slugowner": "wiro", "slugproject": "text-to-image-flux-lora-fast"}
    ).json()
    select = body["tool"][0]["inputs"][0]
    assert select["default"] == "655"
    assert [o["value"] for o in select["options"]] == ["678", "1239", "1236", "1328", "1214"]
    poster = select["options"][0]
    assert poster["triggerwords"] == ["FRESH IDEAS Movie poster style"]
    setting = poster["generatesettings"][0]
    assert (setting["id"], setting["minvalue"], setting["maxvalue"], setting["defaultvalue"]) == (
        "Movie-poster-style-LoRA-Flux-v1.0",
        "0.00",
        "1",
        "1.0",
    )


def test_unknown_tool_detail_is_code_1_with_http_200(queue_only_service: Service) -> None:
    response = queue_only_service.post(
        "/v1/Tool/Detail", json={"slugowner": "nobody", "slugproject": "nothing"}
    )
    assert response.status_code == 200
    assert response.json()["result"] is False
    assert response.json()["errors"][0]["code"] == 1
