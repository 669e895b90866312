"""The package's imports go one way, layer by layer, and never in a circle.

Every import counts, at the top of a module or inside a function, except in
the display hooks Jupyter calls (``_repr_png_``, ``_repr_html_``) and the one
``train(show=True)`` calls for its live picture (``_repr_live_svg_``), which may
reach up to the renderer: the picture of a network is not part of the model.
"""
import ast
from pathlib import Path

import networkx as nx

import simnet

PACKAGE = Path(simnet.__file__).parent
# lower layers first; a module may import from its own layer and the ones before it
LAYERS = [
    ("simnet.errors", "simnet.files", "simnet.progress", "simnet.version"),
    ("simnet.core",),
    ("simnet.engines",),
    ("simnet.scenario",),
    ("simnet.trace",),
    ("simnet.viz",),
    ("simnet.runner",),
    ("simnet.experiments", "simnet.serving"),
    ("simnet.cli", "simnet.__main__"),
]
DISPLAY_HOOKS = {"_repr_png_", "_repr_html_", "_repr_live_svg_"}


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module):
    if module == "simnet":
        return len(LAYERS)  # the facade sits above everything it exports
    for rank, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} belongs to no layer; add it to LAYERS")


def imports(path):
    """(imported module, line) for every import in the file at `path`, display hooks left out."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    hooks = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name in DISPLAY_HOOKS
             for n in ast.walk(f)}
    for node in ast.walk(tree):
        if id(node) in hooks:
            continue
        if isinstance(node, ast.Import):
            yield from ((a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "simnet")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").split(".")[0] == "simnet":
                target = node.module
            else:
                continue
            # `from package import module` imports the module
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                known = (PACKAGE.parent / Path(*candidate.split("."))).with_suffix(".py").exists() or \
                    (PACKAGE.parent / Path(*candidate.split("."))).is_dir()
                yield (candidate if known else target), node.lineno


def import_graph():
    graph = nx.DiGraph()
    for path in sorted(PACKAGE.rglob("*.py")):
        source = module_name(path)
        graph.add_node(source)
        for target, line in imports(path):
            graph.add_edge(source, target, where=f"{path.relative_to(PACKAGE.parent)}:{line}")
    return graph


def test_every_module_belongs_to_a_layer():
    for module in import_graph():
        layer_of(module)


def test_no_module_imports_from_a_layer_above_its_own():
    upward = [f"{data['where']}: {source} imports {target}"
              for source, target, data in import_graph().edges(data=True)
              if layer_of(target) > layer_of(source)]
    assert not upward, "\n".join(upward)


def test_no_import_cycle():
    graph = import_graph()
    cycles = [" -> ".join(cycle + cycle[:1]) for cycle in nx.simple_cycles(graph)]
    assert not cycles, "\n".join(cycles)


def test_the_walk_sees_imports_inside_functions_and_relative_ones():
    # the trainer imports the engine registry at the top; the graph imports the renderer only in its display hook
    graph = import_graph()
    assert graph.has_edge("simnet.core.trainer", "simnet.core.engine")
    assert graph.has_edge("simnet.cli", "simnet.trace.explain")  # `from .trace import explain`, inside a function
    assert not graph.has_edge("simnet.core.graph", "simnet.viz.render")


def modules():
    import importlib
    return [importlib.import_module(name) for name in sorted(import_graph()) if name != "simnet.__main__"]


def test_every_module_says_what_it_offers_in_all_and_offers_it():
    for module in modules():
        offered = getattr(module, "__all__", None)
        assert isinstance(offered, list), f"{module.__name__} has no __all__"
        absent = [name for name in offered if not hasattr(module, name)]
        assert not absent, f"{module.__name__}.__all__ names what it does not have: {absent}"
        tree = ast.parse(Path(module.__file__).read_text())
        defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))
                   and not node.name.startswith("_")}
        assert defined <= set(offered), f"{module.__name__} leaves out of __all__: {sorted(defined - set(offered))}"


def test_every_public_function_and_class_has_a_docstring():
    import inspect
    bare = [f"{module.__name__}.{name}" for module in modules() for name in module.__all__
            if (inspect.isfunction(getattr(module, name)) or inspect.isclass(getattr(module, name)))
            and getattr(module, name).__module__ == module.__name__ and not inspect.getdoc(getattr(module, name))]
    assert not bare, f"no docstring: {bare}"


def test_no_module_uses_another_modules_private_names():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("simnet")):
                found += [f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {alias.name}" for alias in node.names
                          if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert not found, "\n".join(found)
