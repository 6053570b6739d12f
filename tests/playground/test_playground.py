"""The playground at `/`, driven in Debian's Chromium against a real server on the tiny weights.

Each test saves screenshots of the states it reaches under tmp/artifacts/playground/.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

import fluxserve.api
from tests.playground.helpers import (
    KONTEXT,
    KREA,
    LORA,
    choose_tool,
    connect,
    run_and_wait_for_image,
    screenshot,
    seen,
    set_inputs,
)
from tests.support.browser import REPO_ROOT
from tests.support.files import image_bytes
from tests.support.service import Service


def test_wrong_credentials_are_refused_and_right_ones_stay_in_the_tab(page: Page, service: Service) -> None:
    page.goto(f"{service.base_url}/")
    screenshot(page, "01-credentials")
    page.get_by_label("API key").fill(service.api_key)
    page.get_by_label("API secret").fill("not-the-secret")
    page.get_by_role("button", name="Connect").click()
    expect(page.locator("#credentials-error")).to_contain_text("Could not connect")
    expect(page.locator("#workspace")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0  # refused credentials are not kept

    connect(page, service)
    stored = json.loads(page.evaluate("sessionStorage.getItem('fluxserve.credentials')"))
    assert stored == {"apiKey": service.api_key, "apiSecret": service.api_secret}
    assert page.evaluate("localStorage.length") == 0
    options = page.locator("#tool-select option").all_inner_texts()
    assert any(KREA in text for text in options) and any(KONTEXT in text for text in options)


def test_krea_run_shows_progress_then_the_image_and_the_history_after_a_reload(
    page: Page, service: Service
) -> None:
    connect(page, service)
    choose_tool(page, KREA)
    set_inputs(page, Prompt="a lighthouse at dusk", Steps="4", Width="64", Height="64", Seed="7")
    taskid = run_and_wait_for_image(page)
    screenshot(page, "02-krea-result")

    shown = seen(page)
    progress = re.compile(r"Generating \| Step \d of 4 · [\d.]+ it/s · ETA \d+s")
    assert any(progress.search(line) for line in shown), shown
    assert page.locator("#task-progress").evaluate("el => el.value") == 100
    expect(page.locator("#task-status")).to_have_text("Done")
    size = page.locator("#gallery img").first.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert size == [64, 64]
    task = service.detail(taskid)
    assert task["status"] == "task_postprocess_end" and task["pexit"] == "0"
    expect(page.locator("#gallery a.download").first).to_have_attribute("href", task["outputs"][0]["url"])

    page.locator("#parameters-box summary").click()
    expect(page.locator("#parameters")).to_contain_text("a lighthouse at dusk")

    page.locator("#gallery .image-button").first.click()
    expect(page.locator("#viewer")).to_be_visible()
    expect(page.locator("#viewer-download")).to_have_attribute("href", task["outputs"][0]["url"])
    screenshot(page, "03-full-size", full_page=False)
    page.keyboard.press("Escape")
    expect(page.locator("#viewer")).to_be_hidden()

    page.reload()
    row = page.locator(f'#history-list li[data-taskid="{taskid}"]')
    expect(row).to_be_visible()
    expect(row.locator(".chip")).to_have_text("Done")
    expect(row).to_contain_text("a lighthouse at dusk")
    row.locator("img").evaluate("img => img.complete || new Promise(r => img.onload = r)")
    assert row.locator("img").evaluate("img => img.naturalWidth") == 64
    screenshot(page, "04-history-after-reload")


def test_same_seed_run_again_and_copy_as_curl_and_python(
    page: Page, service: Service, tmp_path: Path
) -> None:
    connect(page, service)
    choose_tool(page, KREA)
    set_inputs(page, Prompt="a red fox", Steps="2", Width="64", Height="64", Seed="")
    first = run_and_wait_for_image(page)
    used_seed = service.detail(first)["parameters"]["seed"]
    assert used_seed  # an empty seed was replaced by a random one, echoed in parameters

    page.get_by_role("button", name="Same seed").click()
    expect(page.get_by_label("Seed", exact=True)).to_have_value(used_seed)

    page.get_by_role("button", name="Copy as curl").click()
    curl = page.locator("#snippet").inner_text()
    assert '"seed":""' in curl and f"/v1/Run/{KREA}" in curl
    page.get_by_role("button", name="Copy as Python").click()
    python = page.locator("#snippet").inner_text()
    screenshot(page, "05-copy-as-python")

    env = {**os.environ, "YOUR_API_KEY": service.api_key, "YOUR_API_SECRET": service.api_secret}
    from_curl = subprocess.run(["bash", "-c", curl], env=env, capture_output=True, text=True, check=True)
    (tmp_path / "snippet.py").write_text(python)
    from_python = subprocess.run(
        [sys.executable, str(tmp_path / "snippet.py")], env=env, capture_output=True, text=True, check=True
    )
    curl_task = json.loads(from_curl.stdout)["taskid"]
    python_task = from_python.stdout.split()[0]
    for taskid in (curl_task, python_task):
        parameters = service.wait(taskid)["parameters"]
        assert parameters["prompt"] == "a red fox" and parameters["steps"] == "2"

    page.get_by_role("button", name="Run again").click()
    expect(page.locator("#task-id")).not_to_have_text(f"#{first}")
    expect(page.locator("#gallery img").first).to_be_visible(timeout=300_000)
    again = page.locator("#task-id").inner_text().lstrip("#")
    assert service.detail(again)["parameters"]["prompt"] == "a red fox"


def test_lora_tool_with_two_loras_and_their_scales(page: Page, service: Service) -> None:
    connect(page, service)
    choose_tool(page, LORA)
    picker = page.get_by_role("group", name="LoRA models")
    expect(picker).to_contain_text("FRESH IDEAS Movie poster style")  # trigger words are shown
    expect(picker).to_contain_text("w1z_dreamy_vista style illustration")
    expect(page.get_by_label("LoRA Model Url")).to_be_visible()

    picker.get_by_role("checkbox", name=re.compile("FreshIdeas.Movie-poster-style")).check()
    picker.get_by_role("checkbox", name=re.compile("WizardWhitebeard.Dreamy-Vista")).check()
    poster_scale = page.get_by_label("Scale of Movie-poster-style-LoRA-Flux v1.0")
    expect(poster_scale).to_be_visible()
    poster_scale.fill("0.6")
    expect(page.get_by_label("Scale of WPAP-ART-Style")).to_be_hidden()  # only chosen LoRAs have a slider
    set_inputs(page, Prompt="a poster of a cat", Steps="2", Width="64", Height="64")
    screenshot(page, "06-lora-form")
    taskid = run_and_wait_for_image(page)
    screenshot(page, "07-lora-result")

    parameters = service.detail(taskid)["parameters"]
    assert parameters["selectedLoraModel"] in ("678,1239", ["678", "1239"]), parameters
    assert float(parameters["Movie-poster-style-LoRA-Flux-v1.0"]) == 0.6
    assert float(parameters["Dreamy-Vista-Soft-Color-Pencil-Drawings"]) == 1.0


def test_kontext_with_two_files_picked_and_dropped(page: Page, service: Service, tmp_path: Path) -> None:
    first = tmp_path / "room.png"
    first.write_bytes(image_bytes((64, 64), (200, 40, 40), "PNG"))
    second = image_bytes((48, 48), (40, 40, 200), "PNG")
    connect(page, service)
    choose_tool(page, KONTEXT)

    image_fields = page.locator(".field-image")  # inputImage(Url) and inputImage2(Url)
    expect(image_fields).to_have_count(2)
    page.get_by_role("button", name="Run", exact=True).click()  # no images yet: refused, per field
    for index in range(2):
        expect(image_fields.nth(index).locator(".error")).to_contain_text("inputImage")
    image_fields.nth(0).locator("input[type=file]").set_input_files(str(first))
    # The second one is dropped on its drop zone, as a person drags a file from their desktop.
    transfer = page.evaluate_handle(
        """bytes => { const t = new DataTransfer();
            t.items.add(new File([new Uint8Array(bytes)], 'dog.png', {type: 'image/png'})); return t; }""",
        list(second),
    )
    image_fields.nth(1).locator(".dropzone").dispatch_event("drop", {"dataTransfer": transfer})
    thumbs = page.locator(".image-input img.thumb")
    expect(thumbs).to_have_count(2)
    for index in range(2):
        expect(thumbs.nth(index)).to_be_visible()
    assert thumbs.evaluate_all("imgs => imgs.map(i => i.naturalWidth)") == [64, 48]
    expect(image_fields.nth(1)).to_contain_text("dog.png")
    set_inputs(page, Prompt="put the dog in the room", Steps="2")
    screenshot(page, "08-kontext-form")
    taskid = run_and_wait_for_image(page)
    screenshot(page, "09-kontext-result")

    task = service.detail(taskid)
    assert task["pexit"] == "0", task["debugerror"]
    for name in ("inputImageUrl", "inputImage2Url"):
        assert task["parameters"][name].startswith(f"{service.base_url}/v1/File/"), task["parameters"]


def test_kill_a_running_task(page: Page, service: Service) -> None:
    connect(page, service)
    choose_tool(page, KREA)
    set_inputs(page, Prompt="a slow one", Steps="100", Width="256", Height="256")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#task-progress-label")).to_contain_text("Step", timeout=300_000)
    screenshot(page, "10-running")
    page.get_by_role("button", name="Kill", exact=True).click()
    expect(page.locator("#task-status")).to_have_text("Cancelled")
    taskid = page.locator("#task-id").inner_text().lstrip("#")
    screenshot(page, "11-killed")
    task = service.detail(taskid)
    assert task["status"] == "task_cancel" and not task["outputs"]
    expect(page.locator(f'#history-list li[data-taskid="{taskid}"] .chip')).to_have_text("Cancelled")


def test_validation_error_is_shown_next_to_its_field(page: Page, service: Service) -> None:
    connect(page, service)
    choose_tool(page, KREA)
    before = service.post("/v1/Task/List", json={}).json()["total"]
    set_inputs(page, Steps="101", Width="64", Height="64")
    page.get_by_role("button", name="Run", exact=True).click()
    error = page.locator('[data-field="steps"] .error')
    expect(error).to_be_visible()
    expect(error).to_contain_text("steps")
    expect(error).to_contain_text("100")
    steps = page.get_by_label("Steps", exact=True)
    expect(steps).to_have_attribute("aria-invalid", "true")
    expect(steps).to_be_focused()
    expect(page.locator('[data-field="width"] .error')).to_be_hidden()
    screenshot(page, "12-validation-error")
    assert service.post("/v1/Task/List", json={}).json()["total"] == before  # nothing was queued

    set_inputs(page, Steps="2")
    run_and_wait_for_image(page)
    expect(error).to_be_hidden()


def test_a_queued_task_shows_that_it_waits_and_can_be_cancelled(
    page: Page, queue_only_service: Service
) -> None:
    connect(page, queue_only_service)
    choose_tool(page, KREA)
    set_inputs(page, Steps="2", Width="64", Height="64")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#task-status")).to_have_text("Queued — waiting for a free worker")
    label = page.locator("#task-progress-label")
    expect(label).to_contain_text("no worker is running")  # why it waits, from Detail's debugoutput
    taskid = page.locator("#task-id").inner_text().lstrip("#")
    row = page.locator(f'#history-list li[data-taskid="{taskid}"]')
    expect(row.locator(".chip")).to_have_text("Queued")
    expect(row.get_by_role("button", name=f"Cancel task {taskid}")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel", exact=True)).to_be_visible()  # the panel's own
    screenshot(page, "13-queued")
    row.get_by_role("button", name=f"Cancel task {taskid}").click()  # from the history this time
    expect(page.locator("#task-status")).to_have_text("Cancelled")
    expect(row.locator(".chip")).to_have_text("Cancelled")
    assert queue_only_service.detail(taskid)["status"] == "task_cancel"


def test_signature_without_webcrypto_matches_python(page: Page, service: Service) -> None:
    """Pages on plain http to a LAN host get no crypto.subtle; the fallback must sign the same."""
    page.goto(f"{service.base_url}/")
    cases = [("key", "secret1700000000"), ("k" * 100, "ü" * 70), ("k", "")]
    for key, message in cases:
        expected = hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()
        got = page.evaluate(
            """async ([key, message]) => {
                 const m = await import('/playground/js/hmac.js');
                 return [m.hmacFallbackHex(key, message), await m.hmacSha256Hex(key, message)];
               }""",
            [key, message],
        )
        assert got == [expected, expected]

    key_only = page.evaluate(
        "async () => (await import('/playground/js/api.js')).authHeaders({apiKey: 'k1', apiSecret: ''})"
    )
    assert key_only == {"x-api-key": "k1"}  # a key-only project sends no nonce and no signature


def test_every_request_is_signed_in_the_page(page: Page, service: Service) -> None:
    sent: list[dict[str, str]] = []
    page.on("request", lambda request: sent.append(request.headers) if request.method == "POST" else None)
    connect(page, service)
    assert len(sent) >= 2  # Tool/List and Tool/Detail at least
    for headers in sent:
        nonce = headers["x-nonce"]
        expected = hmac.new(
            service.api_key.encode(), (service.api_secret + nonce).encode(), hashlib.sha256
        ).hexdigest()
        assert headers["x-api-key"] == service.api_key and headers["x-signature"] == expected


def test_labelled_keyboard_usable_phone_width_and_dark(page: Page, service: Service) -> None:
    connect(page, service)
    for slug in (KREA, LORA, KONTEXT):
        choose_tool(page, slug)
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea, button')]
                 .filter(el => el.offsetParent !== null || el.type === 'file')
                 .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                               && !(el.tagName === 'BUTTON' && el.textContent.trim()))
                 .map(el => el.outerHTML.slice(0, 80))"""
        )
        assert unlabelled == [], unlabelled

    choose_tool(page, KREA)
    seed = page.get_by_label("Seed", exact=True)
    page.get_by_role("button", name="Random seed").click()
    first_seed = seed.input_value()
    page.get_by_role("button", name="Random seed").click()
    assert first_seed.isdigit() and seed.input_value().isdigit() and seed.input_value() != first_seed
    # The whole run from the keyboard: Enter on the focused Run button.
    page.get_by_label("Steps", exact=True).fill("2")
    set_inputs(page, Width="64", Height="64")
    page.get_by_role("button", name="Run", exact=True).focus()
    page.keyboard.press("Enter")
    expect(page.locator("#gallery img").first).to_be_visible(timeout=300_000)

    page.set_viewport_size({"width": 375, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "14-phone")
    page.emulate_media(color_scheme="dark")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(16, 18, 22)", background
    screenshot(page, "15-phone-dark")
    page.set_viewport_size({"width": 1280, "height": 900})
    screenshot(page, "16-desktop-dark")


def test_page_and_files_are_served_from_the_package_and_nothing_else(service: Service) -> None:
    page = httpx.get(f"{service.base_url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    script = httpx.get(f"{service.base_url}/playground/js/main.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    for path in (
        "/playground/../routes/playground.py",
        "/playground/%2e%2e/routes/playground.py",
        "/playground/js/nope.js",
        "/playground/",
    ):
        assert httpx.get(f"{service.base_url}{path}").status_code == 404, path

    # Every shipped file is package data, so an installed wheel serves the same page.
    static = Path(fluxserve.api.__file__).parent / "static"
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["fluxserve"]
    shipped = [p.relative_to(static.parent.parent).as_posix() for p in static.rglob("*") if p.is_file()]
    assert shipped and all(any(fnmatch(name, pattern) for pattern in patterns) for name in shipped), shipped
    # No file reaches for another origin (the playground works offline).
    for path in static.rglob("*"):
        if path.is_file():
            assert not re.search(r"(src|href)=\"https?:|@import|//cdn", path.read_text()), path
