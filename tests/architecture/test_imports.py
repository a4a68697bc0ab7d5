"""The package's import graph, read from the source (module-level and function-level imports alike):
no cycle, the device code imports nothing above it, the core never imports the applications or the
tooling, and no module imports another's private names."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE, KERNELS = ROOT / "surrogate_pallas", ROOT / "kernels"
APPS = ("surrogate_pallas.cli", "surrogate_pallas.tooling")
APP_DEPS = ("optax", "sklearn", "matplotlib", "tqdm")


def _modules():
    """module name -> source path, with ``kernels/`` installed as ``surrogate_pallas.kernels``."""
    out = {}
    for base, name in ((PACKAGE, "surrogate_pallas"), (KERNELS, "surrogate_pallas.kernels")):
        for path in base.rglob("*.py"):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([name, *parts])] = path
    return out


MODULES = _modules()


def _imports(name, path):
    """(imported module, imported names) for every import statement anywhere in the module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, ()
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            mod = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
            names = tuple(a.name for a in node.names)
            subs = [n for n in names if f"{mod}.{n}" in MODULES]  # `from . import x`: the submodule x
            if len(subs) < len(names):
                yield mod, tuple(n for n in names if n not in subs)
            for n in subs:
                yield f"{mod}.{n}", ()


def _graph():
    graph = {}
    for name, path in MODULES.items():
        graph[name] = {m for m, _ in _imports(name, path) if m in MODULES and m != name}
    return graph


def test_no_import_cycle():
    graph, state, cycles = _graph(), {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_kernels_import_nothing_from_the_package_above():
    bad = [(name, m) for name, path in MODULES.items() if name.startswith("surrogate_pallas.kernels")
           for m, _ in _imports(name, path)
           if m.startswith("surrogate_pallas") and not m.startswith("surrogate_pallas.kernels")]
    assert not bad, bad


@pytest.mark.parametrize("dep", APP_DEPS)
def test_core_never_imports_applications_or_their_dependencies(dep):
    bad = [(name, m) for name, path in MODULES.items() if not name.startswith(APPS) and name != "surrogate_pallas.__main__"
           for m, _ in _imports(name, path) if m.startswith(APPS) or m.split(".")[0] == dep]
    assert not bad, bad


def test_no_module_imports_another_modules_private_names():
    bad = [(name, m, n) for name, path in MODULES.items() for m, names in _imports(name, path)
           if m in MODULES and m != name for n in names if n.startswith("_") and f"{m}.{n}" not in MODULES]
    assert not bad, bad


@pytest.mark.parametrize("modules", ["surrogate_pallas, surrogate_pallas.compat.ngclearn", "surrogate_pallas.nnx"])
def test_importing_the_library_loads_no_application_module(modules):
    # flax itself imports optax, so the NNX layers are checked for the library's own modules only
    deps = () if "nnx" in modules else APP_DEPS
    code = (f"import sys, {modules}\n"
            f"bad = [m for m in sys.modules if m.startswith({APPS!r}) or m.split('.')[0] in {deps!r}]\n"
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
