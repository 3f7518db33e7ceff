"""proxyd must stay standalone: nothing under proxyd/ may import the control plane."""

import ast
import pathlib

FORBIDDEN = {"django", "appliance", "rest_framework", "celery", "channels", "channels_redis", "psycopg"}
PROXYD = pathlib.Path(__file__).resolve().parent.parent / "proxyd"


def imported_top_level_modules(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_proxyd_imports_no_control_plane_module():
    offenders = {
        str(path.relative_to(PROXYD.parent)): sorted(imported_top_level_modules(path) & FORBIDDEN)
        for path in PROXYD.rglob("*.py")
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}


def test_detector_sees_a_forbidden_import(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("import os\nfrom django.db import models\nimport celery.app\n")
    assert imported_top_level_modules(sample) & FORBIDDEN == {"django", "celery"}
