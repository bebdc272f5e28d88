"""The layers of docs/architecture.md hold: import-linter's contracts (pyproject.toml) pass, and
an import inside a function is only ever a heavy optional dependency, with its reason beside it."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kit import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "abidance"
# Optional dependencies (extras) and what only some platforms have: the only imports a function may make.
HEAVY = {"pandas", "plotly", "sklearn", "threadpoolctl", "joblib", "optuna", "pyarrow", "streamlit", "gymnasium",
         "stable_baselines3", "torch", "tqdm", "cryptography", "lz4", "zstandard", "chdb", "clickhouse_connect",
         "uvloop", "prometheus_client", "apprise", "distributed"}


def lint_imports() -> Path:
    found = Path(sys.executable).parent / "lint-imports"
    if found.exists():
        return found
    other = shutil.which("lint-imports")
    if other is None:
        pytest.skip("import-linter is not installed (it is in the dev extra)")
    return Path(other)


def test_import_linter_contracts_are_kept():
    # --no-cache: a cached graph once hid an import cycle that a clean checkout has.
    out = subprocess.run([str(lint_imports()), "--no-cache"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout and " BROKEN" not in out.stdout


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_level_imports(tree: ast.Module) -> list[str]:
    out = []
    for node in tree.body:
        for n in ([node] + (node.body if isinstance(node, ast.Try) else [])):
            if isinstance(n, ast.Import):
                out += [a.name for a in n.names]
            elif isinstance(n, ast.ImportFrom) and n.module and not n.level:
                out += [n.module] + [f"{n.module}.{a.name}" for a in n.names]
    return out


def heavy_modules(trees: dict[str, ast.Module]) -> set[str]:
    """Our modules that load a heavy dependency when imported (directly or through another of ours)."""
    deps = {m: module_level_imports(t) for m, t in trees.items()}
    heavy: set[str] = set()
    grew = True
    while grew:
        grew = False
        for m, ds in deps.items():
            if m not in heavy and any(d.split(".")[0] in HEAVY or d in heavy for d in ds):
                heavy.add(m)
                grew = True
    return heavy


def test_imports_inside_functions_are_heavy_optional_dependencies_with_a_reason():
    sources = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    trees = {m: ast.parse(p.read_text()) for m, p in sources.items()}
    heavy = heavy_modules(trees)
    problems = []
    for m, tree in trees.items():
        lines = sources[m].read_text().splitlines()
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            imports = sorted((n for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))),
                             key=lambda n: n.lineno)
            group_start = None
            for i, n in enumerate(imports):
                if i == 0 or n.lineno != imports[i - 1].end_lineno + 1:
                    group_start = n.lineno          # a group of adjacent imports shares one reason
                names = [a.name for a in n.names] if isinstance(n, ast.Import) else \
                    [n.module] + [f"{n.module}.{a.name}" for a in n.names]
                where = f"{sources[m].relative_to(PROJECT_ROOT)}:{n.lineno}"
                if not any(x.split(".")[0] in HEAVY or x in heavy for x in names):
                    problems.append(f"{where}: {lines[n.lineno - 1].strip()} is not a heavy optional dependency: "
                                    "import it at the top of the module")
                    continue
                above = [lines[group_start - 2].strip(), lines[group_start - 3].strip() if group_start > 2 else ""]
                if not any(a.startswith("# Lazy:") for a in above):
                    problems.append(f"{where}: lazy import without a '# Lazy: <reason>' line above it")
    assert problems == [], "\n".join(problems)
