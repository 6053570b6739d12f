"""Tool/List and Tool/Detail: all five seed tools, their inputs as the seeds list them, in Wiro's
``parameters`` shape (models.md, model-parameters.md); ranges from the catalog's validation rules."""

from __future__ import annotations

import re

import pytest

from fluxserve.catalog import Catalog
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
    assert body["total"] == 5  # a number, as models.md shows


# The seed's type -> Wiro's parameter type (model-parameters.md), for the inputs of the five tools.
_WIRO_TYPE = {"textarea": "textarea", "select": "select", "float": "range", "number": "range", "text": "text"}


def _items(service: Service, tool: str) -> list[dict]:
    owner, project = tool.split("/")
    body = service.post("/v1/Tool/Detail", json={"slugowner": owner, "slugproject": project}).json()
    return [item for group in body["tool"][0]["parameters"] for item in group["items"]]


@pytest.mark.parametrize("tool", TOOLS)
def test_tool_detail_parameters_match_the_seed(queue_only_service: Service, tool: str) -> None:
    catalog = Catalog.builtin().get(tool)
    items = _items(queue_only_service, tool)
    expected = _seed_inputs(tool)
    assert len(items) == len(expected)
    for item, (name, label, kind, default), spec in zip(items, expected, catalog.inputs, strict=True):
        rules = spec.rules
        if rules.kind == "image":  # model-parameters.md: the file part is the id, the URL goes in {id}Url
            assert (item["id"], item["type"]) == (
                rules.file_field,
                "fileinput",
            ) and name == f"{item['id']}Url"
        elif rules.kind == "seed":
            assert (item["id"], item["type"]) == (name, "text")
        else:
            assert (item["id"], item["type"]) == (name, _WIRO_TYPE[kind]), name
        assert item["label"] == label and item["required"] is rules.required
        if len(default) < 200:  # long prompts are checked by prefix (the seed text is folded)
            assert item["default"] == default, name
        else:
            assert default.startswith(item["default"][:100]), name
        if item["type"] == "range":  # the same numbers the Run validation uses
            assert (item["min"], item["max"]) == (rules.min, rules.max), name
            assert item["step"] == (rules.multiple_of or (1 if rules.kind == "integer" else 0.1)), name
        else:
            assert "min" not in item and "max" not in item
        assert "rules" not in item


def test_tool_list_honours_search_categories_owner_paging_and_order(queue_only_service: Service) -> None:
    def titles(**body) -> tuple[int, list[str]]:
        answer = queue_only_service.post("/v1/Tool/List", json=body).json()
        return answer["total"], [tool["title"] for tool in answer["tool"]]

    assert titles(search="kontext") == (1, ["wiro/flux_kontext_dev_with_2_image"])
    assert titles(search="LORA flux") == (1, ["wiro/text-to-image-flux-lora-fast"])
    assert titles(categories=["image-to-image"])[0] == 2
    assert titles(categories="partner,nothing")[0] == 2  # a form's comma-separated list
    assert titles(slugowner="wiro")[0] == 2
    total, page = titles(start="1", limit="2", sort="id", order="DESC")
    assert total == 5 and page == ["wiro/text-to-image-flux-lora-fast", "black-forest-labs/flux-2-pro-t2i"]
    summary = queue_only_service.post("/v1/Tool/List", json={"summary": True}).json()["tool"][0]
    assert "parameters" not in summary and summary["cleanslugproject"]
    bad = queue_only_service.post("/v1/Tool/List", json={"sort": "price", "limit": "0"}).json()
    assert bad["result"] is False and [e["message"] for e in bad["errors"]] == [
        "Request parameter [limit] must be between 1 and 1000"
    ]


def test_lora_options_carry_trigger_words_and_scale_settings(queue_only_service: Service) -> None:
    body = queue_only_service.post(
        "/v1/Tool/Detail", json={"slugowner": "wiro", "slugproject": "text-to-image-flux-lora-fast"}
    ).json()
    select = body["tool"][0]["parameters"][0]["items"][0]
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
