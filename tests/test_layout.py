"""The package's shape: no import circle between its modules, no backend branch in core."""

import ast
import pathlib
import subprocess
import sys
import textwrap

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "pepita_keras"


def _module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path):
    """Package modules imported at module level (what runs on import)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                "pepita_keras"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("pepita_keras"))
    return found


def test_no_import_circle_between_modules():
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: {m for m in _top_level_imports(path) if m in modules and m != name}
             for name, path in modules.items()}
    # A package imports its own submodules; that is not a circle.
    graph = {name: {m for m in deps if not (m.startswith(name + ".") or name.startswith(m + "."))}
             for name, deps in graph.items()}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, cycles
    assert "pepita_keras.store.migrate" not in graph["pepita_keras.reproduce"]
    # The store wing records training; it never imports the training code.
    training = {"pepita_keras.reproduce", "pepita_keras.core", "pepita_keras.build"}
    assert not {name: graph[name] & training for name in graph
                if name.startswith("pepita_keras.store") and graph[name] & training}


def test_core_has_no_backend_branch():
    # The backend's trainer is chosen once, in pepita_keras.backend.
    source = (PACKAGE / "core.py").read_text()
    assert "backend()" not in source
    assert not [m for m in _top_level_imports(PACKAGE / "core.py") if "jax" in m]


def test_renamed_modules_import_under_their_old_names_with_a_warning():
    # Run in a fresh interpreter: this process may have imported the old names already.
    script = textwrap.dedent("""
        import importlib, sys, warnings
        import pepita_keras
        from pepita_keras import _renamed
        for old, new in _renamed.RENAMED.items():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                module = importlib.import_module(old)
            assert module is importlib.import_module(new) is sys.modules[old], old
            assert [w.category for w in caught] == [DeprecationWarning], (old, caught)
            assert new in str(caught[0].message), caught[0].message
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            from pepita_keras import build, experiment_config
            assert experiment_config.build_model is build.build_model
        assert [w.category for w in caught] == [DeprecationWarning], caught
        print("ok")
        """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.stdout.strip() == "ok", result.stderr


def test_the_old_module_names_are_only_aliases():
    # Each old file is the three-line alias; nothing else may grow back there.
    from pepita_keras import _renamed

    for old in _renamed.RENAMED:
        source = (PACKAGE / f"{old.split('.')[-1]}.py").read_text()
        code = [n for n in ast.parse(source).body
                if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
        assert ast.unparse(code) == ("from pepita_keras import _renamed\n"
                                     "_renamed.alias(__name__)"), old
