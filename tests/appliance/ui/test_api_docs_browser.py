"""Swagger UI and Redoc render in Chromium with every request to another host refused."""

from __future__ import annotations

import pytest

from tests.appliance.ui.test_browser import TIMEOUT_MS, browser  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("path, title_selector", [
    ("/api/v1/schema/swagger/", ".swagger-ui .info .title"),
    ("/api/v1/schema/redoc/", "h1"),
])
def test_api_docs_render_offline(web_server, browser, path, title_selector):  # noqa: F811
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    external = []

    def only_this_host(route):
        if route.request.url.startswith(web_server.url + "/"):
            route.continue_()
        else:
            external.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_host)
    page.goto(web_server.url + path)
    page.wait_for_selector(f"{title_selector}:has-text('RTSP caching proxy appliance API')")
    assert page.locator("text=/api/v1/origins/").first.is_visible() or page.locator("text=origins").count()
    assert external == []
