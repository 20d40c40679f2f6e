"""The shape of the code, checked: layers, no import cycles, small modules and functions, one lazy import.

docs/architecture.md explains the rules; this file is what keeps them. The graph counts every import a
module can make: at the top, under ``if TYPE_CHECKING``, inside a function, and the dotted names given to
:func:`venvkeeper.core.lazy.lazy`.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from venvkeeper.cli.render import RENDERERS
from venvkeeper.core.lazy import lazy

SRC = Path(__file__).resolve().parents[1] / "src" / "venvkeeper"
PACKAGE = "venvkeeper"

# Who may import whom. A capability imports the layers below it, never another capability; the command
# line composes them. The package itself (``venvkeeper/__init__.py``: the version) is below everything,
# and ``python -m venvkeeper`` (``__main__``) above the command line: nothing imports it.
CAPABILITIES = {"deploy", "verify", "doctor", "update", "bundle", "audit"}
LAYERS: dict[str, set[str]] = {
    "": set(),
    "core": set(),
    "gateways": {"core"},
    "project": {"core", "gateways"},
    "generations": {"core", "gateways", "project"},
    # SBOMs are written where a generation is sealed (deploy, install, update) and read by receipt:
    # a layer below the capabilities, like generations/, rather than a capability they cannot import.
    "sbom": {"core", "gateways", "project", "generations"},
    "deploy": {"core", "gateways", "project", "generations", "sbom"},
    "verify": {"core", "gateways", "project", "generations", "sbom"},
    "doctor": {"core", "gateways", "project", "generations", "sbom"},
    "update": {"core", "gateways", "project", "generations", "sbom"},
    "bundle": {"core", "gateways", "project", "generations", "sbom"},
    "audit": {"core", "gateways", "project", "generations", "sbom"},
    "cli": {"core", "gateways", "project", "generations", "sbom", *CAPABILITIES},
    "__main__": {"cli"},
}
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
# The program inside ``pack --executable``'s file runs on a host without venvkeeper: it is standalone,
# so it starts its own processes and imports only the standard library.
STANDALONE = {"venvkeeper.bundle.bootstrap"}
SPAWNING = {"subprocess", "asyncio.subprocess", "multiprocessing"}
# ...and the calls that start one without those modules: os.system, os.exec*, os.spawn*, os.posix_spawn*,
# os.popen, os.fork*, pty.spawn, pty.fork.
SPAWNING_CALLS = (
    "os.system",
    "os.exec",
    "os.spawn",
    "os.posix_spawn",
    "os.popen",
    "os.fork",
    "pty.spawn",
    "pty.fork",
)


def _spawning_calls(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            dotted = f"{node.value.id}.{node.attr}"
            if dotted.startswith(SPAWNING_CALLS):
                found.append(f"{dotted} (line {node.lineno})")
    return found


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    imports: set[str] = field(default_factory=set)  # every module name it may import
    nested_imports: list[int] = field(default_factory=list)  # line numbers of imports inside functions

    @property
    def layer(self) -> str:
        """The package under venvkeeper (``venvkeeper.cli.main``, ``venvkeeper.cli``: "cli"), "__main__",
        or "" for venvkeeper itself."""
        parts = self.name.split(".")
        return parts[1] if len(parts) > 1 else ""


def _name_of(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.name.split(".")
    if module.path.name != "__init__.py":
        base.pop()
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _load() -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for path in sorted(SRC.rglob("*.py")):
        module = Module(_name_of(path), path, ast.parse(path.read_text(encoding="utf-8"), str(path)))
        modules[module.name] = module
    for module in modules.values():
        inside = {id(n) for f in _functions(module.tree) for n in ast.walk(f) if n is not f}
        for node in ast.walk(module.tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, node)
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "lazy"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                targets = [node.args[0].value]
            else:
                continue
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) in inside:
                module.nested_imports.append(node.lineno)
            module.imports.update(targets)
    return modules


MODULES = _load()


def _internal_edges(module: Module) -> set[str]:
    return {t for t in module.imports if t in MODULES and t not in (module.name, PACKAGE)}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    graph = {name: sorted(_internal_edges(m)) for name, m in MODULES.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = stack[stack.index(node) :]
            del stack[stack.index(node) :]
            if len(component) > 1:
                found.append(sorted(component))

    for name in graph:
        if name not in index:
            visit(name)
    return found


def test_the_graph_is_read() -> None:
    """Guards the guard: the reader finds the modules and their imports (a broken walk would pass all)."""
    assert "venvkeeper.core.errors" in MODULES
    assert "venvkeeper.core.exitcodes" in _internal_edges(MODULES["venvkeeper.core.errors"])
    assert len(MODULES) > 40


def test_no_import_cycles() -> None:
    assert _cycles() == []


def test_every_module_has_a_layer() -> None:
    assert sorted({m.layer for m in MODULES.values()} - set(LAYERS)) == []
    assert MODULES[PACKAGE].layer == ""
    assert MODULES[f"{PACKAGE}.__main__"].layer == "__main__"
    assert MODULES[f"{PACKAGE}.cli"].layer == "cli"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_layers(name: str) -> None:
    module = MODULES[name]
    allowed = LAYERS[module.layer] | {module.layer}
    wrong = sorted(t for t in _internal_edges(module) if MODULES[t].layer not in allowed)
    assert wrong == [], f"{name} ({module.layer or PACKAGE}) may import only {sorted(allowed)}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_sizes(name: str) -> None:
    module = MODULES[name]
    lines = len(module.path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{name} has {lines} lines"
    long = [
        f"{f.name} ({(f.end_lineno or f.lineno) - f.lineno + 1} lines)"
        for f in _functions(module.tree)
        if (f.end_lineno or f.lineno) - f.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_at_the_top(name: str) -> None:
    """Deferred imports go through venvkeeper.core.lazy, declared at the top, never inside a function."""
    module = MODULES[name]
    if name in STANDALONE:
        return
    assert module.nested_imports == [], f"{name}: imports inside functions at lines {module.nested_imports}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_only_gateways_start_processes(name: str) -> None:
    module = MODULES[name]
    if module.layer == "gateways" or name in STANDALONE:
        return
    assert sorted(module.imports & SPAWNING) == []
    assert _spawning_calls(module.tree) == []


def test_the_spawn_check_sees_a_call() -> None:
    """Guards the guard: the call check finds an os.exec* as written in the standalone program."""
    assert any(
        call.startswith("os.execv") for call in _spawning_calls(MODULES["venvkeeper.bundle.bootstrap"].tree)
    )


def test_the_standalone_program_needs_no_venvkeeper() -> None:
    for name in STANDALONE:
        assert name in MODULES
        assert sorted(t for t in MODULES[name].imports if t.split(".")[0] == PACKAGE) == []


def test_lazy_names_are_real_modules() -> None:
    """A misspelt lazy("...") would fail only on the path that first reads it: refuse it here."""
    for module in MODULES.values():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "lazy":
                arg = node.args[0]
                assert isinstance(arg, ast.Constant)
                assert isinstance(arg.value, str)
                assert importlib.util.find_spec(arg.value) is not None, f"{module.name}: lazy({arg.value!r})"


def _calls(tree: ast.AST, names: set[str]) -> list[int]:
    """Lines calling one of ``names`` (``f(...)`` or ``anything.f(...)``)."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id in names)
            or (isinstance(node.func, ast.Attribute) and node.func.attr in names)
        )
    ]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_import_by_name(name: str) -> None:
    """``__import__`` or ``importlib.import_module`` would hide an edge from the graph: only the lazy
    mechanism itself imports by name."""
    if name in STANDALONE or name == f"{PACKAGE}.core.lazy":
        return
    assert _calls(MODULES[name].tree, {"__import__", "import_module"}) == []


def test_lazy_defers_the_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "vk_lazy_probe.py").write_text("VALUE = 1\n\n\ndef value():\n    return VALUE\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        probe = lazy("vk_lazy_probe")
        assert "vk_lazy_probe" not in sys.modules  # declared, not imported
        assert probe.value() == 1
        real = sys.modules["vk_lazy_probe"]  # imported by the first read, under its own name
        assert probe.__name__ == "vk_lazy_probe"
        assert real is not probe
        # A patch by dotted name (as tests patch venvkeeper's gateways) is seen through the stand-in.
        monkeypatch.setattr("vk_lazy_probe.VALUE", 2)
        assert probe.VALUE == 2
        assert probe.value() == 2
        # And a write through the stand-in reaches the module.
        probe.VALUE = 3
        assert real.VALUE == 3
    finally:
        sys.modules.pop("vk_lazy_probe", None)


def test_a_patch_of_a_venvkeeper_module_is_seen_through_lazy(monkeypatch: pytest.MonkeyPatch) -> None:
    uv = lazy("venvkeeper.gateways.uv")

    def fake() -> str:
        return "/patched/uv"

    monkeypatch.setattr("venvkeeper.gateways.uv.find_uv", fake)
    assert uv.find_uv is fake
    assert uv.find_uv() == "/patched/uv"


def _result_types() -> set[str]:
    """Every class in venvkeeper that derives from core.results.Result (directly or through another
    result type, as CheckResult through DeployResult), by its dotted name."""
    found: dict[str, str] = {}  # class name -> dotted name
    bases = {"Result"}
    while True:
        before = len(found)
        for module in MODULES.values():
            for node in module.tree.body:
                if isinstance(node, ast.ClassDef) and any(
                    isinstance(base, ast.Name) and base.id in bases for base in node.bases
                ):
                    found[node.name] = f"{module.name}.{node.name}"
        bases |= set(found)
        if len(found) == before:
            return set(found.values())


def test_every_result_type_has_a_renderer() -> None:
    errors = f"{PACKAGE}.generations.results.ErrorResult"  # printed by cli.render itself
    assert errors in _result_types()
    assert sorted(_result_types() - {errors}) == sorted(RENDERERS)
    for name in RENDERERS:
        module, _, cls = name.rpartition(".")
        assert hasattr(importlib.import_module(module), cls), name


# What each renderer may load besides core, gateways, project and generations (and the cli itself).
RENDERER_OWNS = {
    "render_deploy": set(),
    "render_verify": {"verify"},
    "render_doctor": {"doctor"},
    "render_update": {"update"},
    "render_bundle": {"bundle"},
    "render_audit": {"audit"},
    "render_sbom": set(),
}


@pytest.mark.parametrize("renderer", sorted(RENDERER_OWNS))
def test_a_renderer_loads_only_its_own_capability(renderer: str) -> None:
    """Printing a deploy, verify or doctor result must not load another command's result types, nor
    cryptography (which only signing needs). Run in a fresh interpreter: this one has imported everything."""
    code = f"import sys, {PACKAGE}.cli.render, {PACKAGE}.cli.{renderer}; print(' '.join(sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    capabilities = {m.split(".")[1] for m in loaded if m.startswith(f"{PACKAGE}.")}
    assert sorted((capabilities & CAPABILITIES) - RENDERER_OWNS[renderer]) == []
    assert "cryptography" not in loaded


def test_heal_loads_deploy_only_when_it_redeploys() -> None:
    """heal is handed deploy (cli/compose.py) but most heals never call it: naming the redeployer must
    not load the deploy machinery (it doubled a no-op heal's start-up once). Fresh interpreter."""
    code = (
        f"import sys, {PACKAGE}.cli.commands_heal as c; c.compose.redeploy_for_heal; c.doctor_heal.heal; "
        "print(' '.join(sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert f"{PACKAGE}.doctor.heal" in loaded
    assert sorted(m for m in loaded if m.startswith(f"{PACKAGE}.deploy")) == []
