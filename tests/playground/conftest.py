"""Browser fixtures: one Chromium per module, a fresh context (own sessionStorage) per test; the
shared servers seen through a project of the test's own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.browser import CHROMIUM_ARGS, chromium_path
from tests.support.service import Service
from tests.support.shared import own_project


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A desktop-sized page; a script error on it fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(60_000)
    new_page = context.new_page()
    errors: list[str] = []
    new_page.on("pageerror", lambda error: errors.append(str(error)))
    yield new_page
    context.close()
    assert not errors, f"script errors on the page: {errors}"


@pytest.fixture
def service(service: Service) -> Service:
    """The run's shared default server, as a new project: the page's history (the project's Task/List)
    and a test's task counts hold only this test's tasks, whatever parallel tests do on the server."""
    return own_project(service, "playground")


@pytest.fixture
def queue_only_service(queue_only_service: Service) -> Service:
    """The shared queue-only server, as a new project (see ``service``)."""
    return own_project(queue_only_service, "playground")
