"""The layering that ARCHITECTURE.md describes, checked by parsing the sources: codec/ sees model/
only through model/interface.py, the ANS layer sees no model at all, and no function is long."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_FUNCTION_LINES = 80
# The command line's entry point mounts the model's commands (train, convert, ...) on its group;
# it is the one codec module that may name model/ beyond the interface.
ENTRY_POINT = ("cli.py", "model.cli")


def _model_imports(path: Path) -> list[str]:
    """The model modules a codec module imports, as "model.NAME" (or "model" for the package)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and (node.module or "").split(".")[0] == "model":
            module = node.module
            found += [f"{module}.{a.name}" if module == "model" else module for a in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vlae_codec.model"):
            found.append(node.module.removeprefix("vlae_codec."))
        elif isinstance(node, ast.Import):
            found += [a.name.removeprefix("vlae_codec.") for a in node.names if a.name.startswith("vlae_codec.model")]
    return found


@pytest.mark.parametrize("path", sorted((ROOT / "codec").glob("*.py")), ids=lambda p: p.name)
def test_codec_sees_model_only_through_the_interface(path):
    allowed = {"model.interface"} | ({ENTRY_POINT[1]} if path.name == ENTRY_POINT[0] else set())
    assert set(_model_imports(path)) <= allowed


def test_ans_layer_depends_on_no_model():
    tree = ast.parse((ROOT / "codec" / "ans.py").read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0]
    assert all(m == "errors" for m in imported), imported


def test_the_layout_check_sees_imports():
    assert set(_model_imports(ROOT / "codec" / "latents.py")) == {"model.interface"}


@pytest.mark.parametrize("folder", ["codec", "model"])
def test_no_function_is_longer_than_80_lines(folder):
    long = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def test_benchmarks_do_not_edit_the_import_path():
    edits = [str(p.relative_to(ROOT)) for folder in ("benchmarks", "tests")
             for p in (ROOT / folder).rglob("*.py") if "sys.path" in p.read_text() and p.name != "test_layout.py"]
    assert edits == []
