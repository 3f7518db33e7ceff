from tests.peers.fixtures import proxyd_process  # noqa: F401  (fixture)
from tests.wmorigin.fixtures import wm_origin  # noqa: F401  (fixture)


def pytest_ignore_collect(collection_path, config):
    """The live control-plane tests need pytest-django; skip collecting them under `-p no:django`."""
    if collection_path.name.startswith("test_live_") and not config.pluginmanager.hasplugin("django"):
        return True
    return None
