"""Swagger UI and Redoc at /api/v1/schema/{swagger,redoc}/, their files served by this host only."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders

ASSET = re.compile(r'(?:src|href|spec-url)="([^"]+)"')


@pytest.mark.parametrize("path, script", [
    ("/api/v1/schema/swagger/", "swagger-ui-dist/swagger-ui-bundle.js"),
    ("/api/v1/schema/redoc/", "redoc/bundles/redoc.standalone.js"),
])
def test_docs_page_loads_its_javascript_from_this_host(client, path, script):
    page = client.get(path)
    assert page.status_code == 200
    html = page.content.decode()
    assets = ASSET.findall(html)
    assert any(a.endswith(script) for a in assets), assets
    assert "//" not in " ".join(assets), f"external URL in {path}: {assets}"
    assert "http://" not in html and "https://" not in html
    for asset in assets:
        if asset.startswith("/static/"):
            assert finders.find(asset.removeprefix("/static/")), f"{asset} is not a local static file"
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "RTSP caching proxy appliance API"
