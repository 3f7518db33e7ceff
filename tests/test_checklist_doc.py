"""docs/ms-rtsp-checklist.md names tests; every one must exist (a renamed or deleted test fails here)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "ms-rtsp-checklist.md"
TEST_REF = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def named_tests(text: str) -> list[tuple[str, str]]:
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2:3].isdigit()]
    return [ref for row in rows for ref in TEST_REF.findall(row.rsplit("|", 2)[-2])]


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")}


def items_with_rows(text: str) -> set[int]:
    """Checklist items named in the first cell of a row ("| 39, 41, 42 | ..." names three)."""
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2:3].isdigit()]
    return {int(item) for row in rows for item in row.split("|")[1].split(",")}


def missing(text: str) -> list[str]:
    out = []
    for path, name in named_tests(text):
        file = ROOT / path
        if not file.is_file() or name not in defined_tests(file):
            out.append(f"{path}::{name}")
    return out


def test_every_row_names_at_least_one_test_and_all_exist():
    text = DOC.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2:3].isdigit()]
    assert rows and all(TEST_REF.search(row.rsplit("|", 2)[-2]) for row in rows)
    assert missing(text) == []


def test_the_check_catches_a_test_that_does_not_exist():
    row = "| 1 | x | y | `tests/test_checklist_doc.py::test_no_such_test` |"
    assert missing(row) == ["tests/test_checklist_doc.py::test_no_such_test"]


def test_every_item_of_the_checklist_has_a_row():
    assert sorted(set(range(1, 69)) - items_with_rows(DOC.read_text())) == []


def test_a_row_naming_several_items_counts_for_each():
    assert items_with_rows("| 39, 41, 42 | x | y | z |\n| 7 | x | y | z |") == {7, 39, 41, 42}
