"""Style rules that can be checked (STYLE.md §3): layering, module hygiene, env access."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "executor"
MODULES = sorted(p for p in ROOT.rglob("*.py"))

# Parsed once, at collection. CPython 3.11.7 can raise "SystemError: AST constructor recursion
# depth mismatch" from ast.parse late in a long pytest run (gh-106905, after other tests have hit
# and caught RecursionError); parsing before any test runs keeps this check deterministic.
SOURCES: dict[Path, str] = {p: p.read_text(encoding="utf-8") for p in MODULES}
TREES: dict[Path, ast.Module] = {p: ast.parse(text) for p, text in SOURCES.items()}

# Who may import what inside the project (module prefixes), STYLE.md §2.
ALLOWED: dict[str, set[str]] = {
    "executor.config.settings": {
        "executor.errors",
        "executor.config.goparse",
        "executor.config.ranges",
        "executor.config.kubernetes",
        "executor.redaction",
    },
    "executor.config.ranges": {"executor.config.goparse"},
    "executor.config.kubernetes": {"executor.config.goparse"},
    "executor.config.goparse": set(),
    "executor.wire": {
        "executor.wire.base",
        "executor.wire.decode",
        "executor.wire.job",
        "executor.wire.requests",
    },
    "executor.wire.base": set(),
    "executor.wire.decode": {"executor.wire.base", "executor.wire.job", "executor.redaction"},
    "executor.wire.job": {"executor.wire.base"},
    "executor.wire.requests": {"executor.wire.base"},
    "executor.errors": set(),
    "executor.redaction": set(),
    "executor.metrics": set(),
    "executor.apiclient.base": {"executor.errors"},
    "executor.apiclient.queue": {"executor.wire", "executor.errors", "executor.apiclient.base"},
    "executor.logstream.logger": {
        "executor.wire",
        "executor.errors",
        "executor.redaction",
        "executor.logstream.output",
    },
    "executor.logstream.output": set(),
    "executor.worker.loop": {
        "executor.wire",
        "executor.errors",
        "executor.redaction",
        "executor.metrics",
        "executor.config.goparse",
        "executor.worker.backoff",
    },
    "executor.worker.backoff": set(),
}
FORBIDDEN_FOR_SANDBOX = (
    "executor.worker.loop",
    "executor.worker.handler",
    "executor.apiclient.queue",
    "executor.runtime.docker",
    "executor.workspace.clone",
    "executor.runtime.janitor",
    "executor.cli",
)


def _name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    tree = TREES[path]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {m for m in found if m == "executor" or m.startswith("executor.")}


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_module_hygiene(path: Path) -> None:
    text = SOURCES[path]
    tree = TREES[path]
    assert ast.get_docstring(tree), f"{path} has no module docstring"
    # A guide, not a law (STYLE.md): a file may reach 450 lines where it reads better whole.
    assert len(text.splitlines()) <= 450, f"{path} is over 450 lines"
    if path.name != "__main__.py":
        names = {
            t.id
            for n in tree.body
            if isinstance(n, ast.Assign | ast.AnnAssign)
            for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
            if isinstance(t, ast.Name)
        }
        assert "__all__" in names, f"{path} does not declare __all__"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_dependencies_point_one_way(path: Path) -> None:
    name = _name(path)
    imports = _imports(path)
    if name in ALLOWED:
        bad = {
            m for m in imports if not any(m == a or m.startswith(a + ".") for a in ALLOWED[name])
        }
        assert not bad, f"{name} must not import {sorted(bad)}"
    if name.startswith("executor.sandbox"):
        bad = {m for m in imports if m.startswith(FORBIDDEN_FOR_SANDBOX)}
        assert not bad, f"the sandbox must not import {sorted(bad)}"
    elif name != "executor.cli":
        assert not any(m.startswith("executor.sandbox") for m in imports), name


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_only_config_reads_the_environment(path: Path) -> None:
    if _name(path) in ("executor.config.settings", "executor.cli") or "sandbox" in path.parts:
        return
    if _name(path) == "executor":
        # The daemon's start-up decisions (before any library is imported) set one library
        # switch, PYDANTIC_DISABLE_PLUGINS; they read no configuration.
        text = path.read_text(encoding="utf-8")
        assert text.count("os.environ") == 1 and "os.getenv" not in text, path
        assert 'os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")' in text, path
        return
    text = path.read_text(encoding="utf-8")
    assert "os.environ" not in text and "os.getenv" not in text, path


def test_no_private_cross_module_imports() -> None:
    for path in MODULES:
        tree = TREES[path]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("executor"):
                for alias in node.names:
                    assert not alias.name.startswith("_") or alias.name == "__version__", (
                        f"{path} imports private {node.module}.{alias.name}"
                    )


# Package boundaries (STYLE.md §2): prefixes a package may never import, and for the sandbox the
# only prefixes it may import. Checked per package, so a new module inherits its package's rule.
PACKAGE_FORBIDS: dict[str, tuple[str, ...]] = {
    # The loop is blind to Docker, git, HTTP and what a job means.
    "executor.worker.loop": (
        "docker",
        "httpx",
        "executor.runtime",
        "executor.workspace",
        "executor.apiclient",
        "executor.batch",
        "executor.logstream",
    ),
    # The client knows the wire, never a job's meaning or how it runs.
    "executor.apiclient": (
        "executor.worker",
        "executor.runtime",
        "executor.workspace",
        "executor.batch",
        "executor.logstream",
        "executor.run",
    ),
    "executor.logstream": ("docker", "httpx", "executor.runtime", "executor.apiclient"),
    "executor.workspace": ("docker", "executor.runtime.docker", "executor.apiclient"),
    "executor.config": ("executor.wire", "executor.worker", "executor.runtime", "executor.run"),
    "executor.wire": ("executor.apiclient", "executor.worker", "executor.runtime", "executor.run"),
    "executor.batch": ("executor.worker", "executor.apiclient", "executor.run"),
    "executor.runtime": ("executor.worker", "executor.apiclient", "executor.run"),
    # The Kubernetes runtime runs the whole job in a pod: no Docker, no host workspace.
    "executor.runtime.kubernetes": (
        "docker",
        "executor.runtime.docker",
        "executor.runtime.rootclean",
        "executor.workspace.clone",
        "executor.workspace.gitproxy",
    ),
}
SANDBOX_MAY_IMPORT = (
    "executor.sandbox",
    "executor.wire",
    "executor.errors",
    "executor.config.goparse",
    "executor.batch.spec",
    "executor.batch.template",
    "executor.batch.execution",
    "executor.batch.cache",
)


def _all_imports(path: Path) -> set[str]:
    """Every absolute import, the project's and third parties' (top-level name kept whole)."""
    found: set[str] = set()
    for node in ast.walk(TREES[path]):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_package_boundaries(path: Path) -> None:
    name = _name(path)
    imports = _all_imports(path)
    for package, forbidden in PACKAGE_FORBIDS.items():
        if name == package or name.startswith(package + "."):
            bad = {m for m in imports if any(m == f or m.startswith(f + ".") for f in forbidden)}
            assert not bad, f"{name} ({package}) must not import {sorted(bad)}"
    if name.startswith("executor.sandbox"):
        project = {m for m in imports if m.startswith("executor.")}
        bad = {m for m in project if not m.startswith(SANDBOX_MAY_IMPORT)}
        assert not bad, f"the sandbox may import only {SANDBOX_MAY_IMPORT}, not {sorted(bad)}"
    elif name != "executor.cli":
        assert not any(m.startswith("executor.sandbox") for m in imports), name


def test_runtime_package_does_not_load_the_docker_sdk() -> None:
    init = ROOT / "runtime" / "__init__.py"
    assert not {m for m in _all_imports(init) if m == "docker" or m.startswith("docker.")}
    assert "executor.runtime.docker" not in _all_imports(init)


def test_every_package_has_a_docstringed_init() -> None:
    for package in sorted(p for p in ROOT.rglob("*") if p.is_dir() and p.name != "__pycache__"):
        if any(package.glob("*.py")):
            init = package / "__init__.py"
            assert init.exists(), f"{package} has no __init__.py"
            assert ast.get_docstring(TREES[init]), f"{init} has no docstring"


def _top_level_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in TREES[path].body:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_kubernetes_client_is_imported_only_when_selected() -> None:
    """Only `runtime.kubernetes.client` imports kubernetes_asyncio, and nothing outside the
    package imports the Kubernetes runtime at module level (serve and validate load it when
    the runtime is selected): a Docker daemon never loads the client's models."""
    for path in MODULES:
        name = _name(path)
        every = _all_imports(path)
        if any(m == "kubernetes_asyncio" or m.startswith("kubernetes_asyncio.") for m in every):
            assert name == "executor.runtime.kubernetes.client", name
        if not name.startswith("executor.runtime.kubernetes"):
            top = _top_level_imports(path)
            assert not any(m.startswith("executor.runtime.kubernetes") for m in top), name
    init = ROOT / "runtime" / "kubernetes" / "__init__.py"
    assert not _all_imports(init)


def test_test_modules_have_unique_basenames() -> None:
    """pytest imports test files by basename (no packages under tests/): two files of one name
    stop the whole suite at collection ("import file mismatch"), as tests/k8s/test_runtime.py
    beside tests/test_runtime.py once did in CI."""
    tests = Path(__file__).resolve().parent
    names: dict[str, list[str]] = {}
    for path in tests.rglob("*.py"):
        if path.name != "conftest.py" and "__pycache__" not in path.parts:
            names.setdefault(path.name, []).append(str(path.relative_to(tests)))
    assert {n: p for n, p in names.items() if len(p) > 1} == {}
