"""Driving the playground page the way a person does: by labels, buttons and what is shown."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.support.browser import artifacts_dir
from tests.support.service import Service

KREA = "black-forest-labs/FLUX.1-Krea-dev"
LORA = "wiro/text-to-image-flux-lora-fast"
KONTEXT = "wiro/flux_kontext_dev_with_2_image"

# Records what the task panel showed, so a test can tell that progress appeared on the way.
WATCH_TASK_PANEL = """() => {
  window.__seen = [];
  const record = () => window.__seen.push(
    document.getElementById('task-status').textContent + ' | ' +
    document.getElementById('task-progress-label').textContent);
  new MutationObserver(record).observe(document.getElementById('task-live'),
    {subtree: true, childList: true, characterData: true});
}"""


def connect(page: Page, service: Service, secret: str | None = None) -> None:
    page.goto(f"{service.base_url}/")
    page.get_by_label("API key").fill(service.api_key)
    page.get_by_label("API secret").fill(service.api_secret if secret is None else secret)
    page.get_by_role("button", name="Connect").click()
    expect(page.locator("#workspace")).to_be_visible()
    expect(page.get_by_label("Prompt")).to_be_visible()


def choose_tool(page: Page, slug: str) -> None:
    page.get_by_label("Tool", exact=True).select_option(slug)
    expect(page.locator("#tool-select")).to_have_value(slug)
    expect(page.locator(f'#fields[data-tool="{slug}"]')).to_be_attached()  # its form is drawn


def set_inputs(page: Page, **values: str) -> None:
    """Fill inputs by their visible label ("Steps", "Width", …); a required input's label ends in " *"."""
    for label, value in values.items():
        page.get_by_label(re.compile(rf"^{re.escape(label)}( \*)?$")).fill(value)


def run_and_wait_for_image(page: Page) -> str:
    """Click Run, wait for the first image in the gallery; returns the task id shown."""
    page.evaluate(WATCH_TASK_PANEL)
    page.get_by_role("button", name="Run", exact=True).click()
    image = page.locator("#gallery img").first
    expect(image).to_be_visible(timeout=300_000)
    page.wait_for_function("() => document.querySelector('#gallery img').naturalWidth > 0")
    return page.locator("#task-id").inner_text().lstrip("#")


def seen(page: Page) -> list[str]:
    return page.evaluate("window.__seen")


def screenshot(page: Page, name: str, full_page: bool = True) -> None:
    page.screenshot(path=str(artifacts_dir() / f"{name}.png"), full_page=full_page)
    if full_page:
        # After a full-page capture of a scrolled page, Chromium's hit testing can lag behind the
        # layout (a click lands on the element that used to be there); scrolling resets it.
        page.evaluate("scrollTo(0, 0)")
