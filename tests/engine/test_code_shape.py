"""The shape of the code (issue "one shape for the engine"), checked with the ast module.

- no engine module imports another module's private name (``from .x import _y``);
- no function of the engine is longer than ``MAX_LINES`` lines of code (its docstring not counted);
- the QGIS plugin imports nothing from the engine but ``engine/contract.py``;
- engine and plugin code never point at files outside the repository (setup notes, a shared reference folder).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "engine"
PLUGIN = ROOT / "bdgf_plugin"
MAX_LINES = 80


def _modules(folder: Path):
    for path in sorted(folder.rglob("*.py")):
        yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(encoding="utf-8"), str(path))


def _code_lines(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    lines = fn.end_lineno - fn.lineno + 1
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        lines -= body[0].end_lineno - body[0].lineno + 1
    return lines


def test_no_private_imports_across_engine_modules():
    bad = []
    for name, tree in _modules(ENGINE):
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                bad += [f"{name}:{node.lineno} from {'.' * node.level}{node.module or ''} import {a.name}"
                        for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    assert not bad, "private names imported across modules:\n" + "\n".join(bad)


def test_engine_functions_are_short():
    long = []
    for name, tree in _modules(ENGINE):
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _code_lines(node) > MAX_LINES:
                long.append(f"{name}:{node.lineno} {node.name}: {_code_lines(node)} lines")
    assert not long, f"functions longer than {MAX_LINES} lines of code:\n" + "\n".join(long)


def test_plugin_imports_only_the_contract():
    bad = []
    for name, tree in _modules(PLUGIN):
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.level < 2:
                continue                              # bdgf_plugin's own modules, Qt, QGIS, stdlib
            module = node.module or ""
            if module == "engine" and all(a.name == "contract" for a in node.names):
                continue
            if module == "engine.contract" or (module and not module.startswith("engine")):
                continue
            if not module:                            # "from .. import x": x must not be the engine
                if all(a.name != "engine" for a in node.names):
                    continue
            bad.append(f"{name}:{node.lineno} from {'.' * node.level}{module} import "
                       + ", ".join(a.name for a in node.names))
    assert not bad, "plugin imports of the engine other than engine.contract:\n" + "\n".join(bad)


def test_code_does_not_point_outside_the_repository():
    """Engine, plugin, benchmarks, scripts and docs name no folder outside the repository (the benchmarks' full
    scenes come from $BDGF_BENCH_DATA, benchmarks/bench_data.py)."""
    bad = []
    files = [*ENGINE.rglob("*.py"), *PLUGIN.rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py"),
             *(ROOT / "benchmarks").glob("*.sh"), *(ROOT / "scripts").glob("*.*"), *(ROOT / "docs").rglob("*.md"),
             ROOT / "README.md"]
    for path in sorted(files):
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "qgis-setup" in line or "../shared" in line or "/work/shared" in line:
                bad.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not bad, "\n".join(bad)
