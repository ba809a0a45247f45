"""The package's imports point down the layers only (docs/architecture.md): an ast walk over every
module's imports, function-level ones included, fails on any import of a higher layer."""

import ast
import pathlib

import torch_biren

PACKAGE = pathlib.Path(torch_biren.__file__).parent

# Lowest first. A module may import its own layer and the ones below. "<root>" is the package's
# __init__ (registration and the op-count API), which imports ops/ and the integrations.
LAYERS = [
    {"_C"},                                                        # the C++ runtime
    {"sim", "_fp64_exempt"},                                       # the device model: chips, costs, clock
    {"kernels", "biren", "distributed", "profiler", "debug", "_compile", "inductor", "_exit"},
    {"ops"},                                                       # device kernels registered from Python
    {"adapt", "migration", "integrations", "transfer_to_biren", "<root>"},
    {"projection"},                                                # full-size models traced onto sim/
    {"commands", "cli", "docs", "__main__"},                       # the command line
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _part(module):
    """The top-level part of torch_biren a dotted module name belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<root>"


def _imports(path, package_root):
    """(line, imported torch_biren module) for every import in the file at `path`."""
    rel = path.relative_to(package_root.parent).with_suffix("")
    module = ".".join(rel.parts)
    package = module.removesuffix(".__init__") if rel.name == "__init__" else module.rsplit(".", 1)[0]
    name = package_root.name
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == name:  # from torch_biren import x: x may be a module
                for alias in node.names:
                    yield node.lineno, f"{name}.{alias.name}"
            elif target.startswith(name + "."):
                yield node.lineno, target
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == name or alias.name.startswith(name + "."):
                    yield node.lineno, alias.name


def violations(package_root=PACKAGE):
    """'file:line: part (layer i) imports part (layer j)' for every import pointing up, and for
    parts of the package no layer names."""
    out = []
    for path in sorted(package_root.rglob("*.py")):
        rel = path.relative_to(package_root.parent)
        here = _part(".".join(rel.with_suffix("").parts).removesuffix(".__init__"))
        for line, target in _imports(path, package_root):
            there = _part(target)
            if there not in RANK and not any((package_root / p).exists() for p in (there, f"{there}.py")):
                there = "<root>"  # from torch_biren import op_counts: a name of the package's __init__
            for part in (here, there):
                if part not in RANK:
                    out.append(f"{rel}:{line}: {part} is in no layer of tests/test_layers.py")
            if here in RANK and there in RANK and RANK[there] > RANK[here]:
                out.append(f"{rel}:{line}: {here} (layer {RANK[here]}) imports {target} (layer {RANK[there]})")
    return out


def test_imports_point_down_the_layers():
    assert violations() == []


def test_an_upward_import_is_caught(tmp_path):
    pkg = tmp_path / "torch_biren"
    (pkg / "sim").mkdir(parents=True)
    (pkg / "adapt").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "sim" / "__init__.py").write_text("")
    (pkg / "adapt" / "__init__.py").write_text("")
    (pkg / "sim" / "projection.py").write_text("def f():\n    from ..adapt import zoo\n")
    assert violations(pkg) == ["torch_biren/sim/projection.py:2: sim (layer 1) imports torch_biren.adapt (layer 4)"]
