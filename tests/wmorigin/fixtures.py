"""pytest fixture for the Windows Media test origin. Other test packages can use it with
`pytest_plugins = ["tests.wmorigin.fixtures"]` or `from tests.wmorigin.fixtures import wm_origin`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.wmorigin.server import WMOrigin


@pytest.fixture
def wm_origin() -> Iterator[WMOrigin]:
    origin = WMOrigin().start()
    try:
        yield origin
    finally:
        origin.stop()
