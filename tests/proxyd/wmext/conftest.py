from tests.wmorigin.fixtures import wm_origin  # noqa: F401  (fixture)
