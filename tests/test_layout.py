"""The house in rooms: sa_lib's sub-packages import one way, without cycles, and at module level.

Every module of sa_lib is parsed with `ast` (nothing is imported). Each import of another part of the package is
an edge of the part-level graph (a part: a sub-package such as sa_lib.model, or a top-level module such as
sa_lib.profiles). The test fails on
- an import against the layer order LAYERS (a lower part importing a higher one);
- a cycle among the parts;
- an import inside a function without a comment saying it is deferred on purpose ("deferred: why", on the
  import's line or the line above): heavy optional imports (gradio, papermill, ...) only.
The public names users type keep working: `from sa_lib.colorize import colorize`, `from sa_lib.model import
build_model`, `python -m sa_lib`.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sa_lib"
# Lower layers never import higher ones; parts of one layer may import each other (without a cycle).
LAYERS = [("core",), ("superpixels",), ("model",), ("data",), ("profiles", "inference", "colorize"), ("eval",),
          ("train",), ("figures",), ("app",), ("cli", "__main__")]
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}
DEFERRED = "deferred"


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def part_of(module: str) -> str | None:
    """The part of a dotted name inside sa_lib (its sub-package or top-level module); None for sa_lib itself."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else None


def imported(module: str, path: Path, node: ast.AST) -> list[str]:
    """The sa_lib modules (or sa_lib.x.name forms) an Import / ImportFrom node names."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.startswith("sa_lib")]
    if node.level:  # relative: resolved against the importing module's package
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        base = package[:len(package) - node.level + 1]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith("sa_lib"):
        return []
    return [target] if node.module else [f"{target}.{alias.name}" for alias in node.names]


def function_level_imports(tree: ast.Module) -> list[ast.AST]:
    """The Import / ImportFrom nodes inside a function (at any depth)."""
    found = []
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found += [n for n in ast.walk(function) if isinstance(n, (ast.Import, ast.ImportFrom))]
    return found


def declared(lines: list[str], line_no: int) -> bool:
    """True when the import on line `line_no` (1-based), or the run of import / `try:` lines just above it,
    carries a "deferred" comment (one comment may cover a block of imports)."""
    number = line_no - 1
    while number >= 0:
        text = lines[number].strip()
        if DEFERRED in text:
            return True
        if number < line_no - 1 and not text.startswith(("import ", "from ", "try:")):
            return False
        number -= 1
    return False


def part_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in modules().items():
        source = part_of(module)
        if source is None:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in imported(module, path, node):
                    part = part_of(target)
                    if part is not None and part != source:
                        graph.setdefault(source, set()).add(part)
    return graph


def test_every_part_has_a_layer():
    parts = {part_of(m) for m in modules()} - {None}
    assert parts <= set(RANK), f"parts without a layer in LAYERS: {sorted(parts - set(RANK))}"


def test_imports_flow_one_way():
    upward = [f"{a} -> {b}" for a, targets in part_graph().items() for b in targets if RANK[b] > RANK[a]]
    assert not upward, f"imports against the layer order {LAYERS}: {upward}"


def test_no_cycle_between_parts():
    graph = part_graph()
    state: dict[str, str] = {}

    def visit(part: str, trail: list[str]) -> list[str] | None:
        state[part] = "open"
        for nxt in sorted(graph.get(part, ())):
            if state.get(nxt) == "open":
                return trail + [part, nxt]
            if nxt not in state:
                cycle = visit(nxt, trail + [part])
                if cycle:
                    return cycle
        state[part] = "done"
        return None

    for part in sorted(graph):
        if part not in state:
            cycle = visit(part, [])
            assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_imports_are_at_module_level_unless_deferred_on_purpose():
    undeclared = []
    for module, path in modules().items():
        lines = path.read_text().splitlines()
        for node in function_level_imports(ast.parse("\n".join(lines))):
            here = lines[node.lineno - 1]
            if not declared(lines, node.lineno):
                undeclared.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {here.strip()}")
    assert not undeclared, "function-level imports without a '# deferred: why' comment:\n" + "\n".join(undeclared)


def test_no_argparse_outside_the_cli():
    users = [str(path.relative_to(PACKAGE.parent)) for module, path in modules().items()
             if part_of(module) not in ("cli",) and "argparse" in path.read_text()]
    assert not users, f"argparse outside sa_lib/cli: {users}"


def test_the_names_users_type_keep_working():
    from sa_lib.colorize import colorize
    from sa_lib.inference.colorize import colorize as inference_colorize
    from sa_lib.model import build_model
    from sa_lib.model.colorizer import build_model as colorizer_build_model

    assert colorize is inference_colorize and build_model is colorizer_build_model


@pytest.mark.slow  # a subprocess
def test_python_dash_m_sa_lib_is_sa_colorize():
    result = subprocess.run([sys.executable, "-m", "sa_lib", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("usage: sa-colorize")


# A profile's behaviour is a field of its Profile (sa_lib/profiles.py), never a test of its name: a comparison of a
# string with one of the registry's names (`profile == "demo"`, `name in ("smoke", ...)`) is a branch that a new
# profile would silently miss.
def _profile_name_tests(source: str) -> list[int]:
    """Lines of `source` that compare something with a registered profile's name."""
    from sa_lib.profiles import PROFILES  # deferred: the other tests of this module import nothing of sa_lib

    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        names = [c.value for o in operands for c in ([o] if isinstance(o, ast.Constant) else
                 getattr(o, "elts", [])) if isinstance(c, ast.Constant)]
        if any(name in PROFILES for name in names if isinstance(name, str)):
            lines.append(node.lineno)
    return lines


def test_no_library_module_or_notebook_branches_on_a_profile_name():
    import json  # deferred: only this test reads notebooks

    found = {}
    for name, path in modules().items():
        if name != "sa_lib.profiles" and (lines := _profile_name_tests(path.read_text())):
            found[str(path.relative_to(PACKAGE.parent))] = lines
    for notebook in sorted((PACKAGE.parent / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        for i, cell in enumerate(c for c in cells if c["cell_type"] == "code"):
            if lines := _profile_name_tests("".join(cell["source"])):
                found[f"{notebook.name} code cell {i}"] = lines
    assert not found, f"branches on a profile's name (make them fields of sa_lib.profiles.Profile): {found}"


def test_the_profile_name_check_finds_such_a_branch():
    assert _profile_name_tests('if profile == "demo":\n    pass\n') == [1]
    assert _profile_name_tests('x = p in ("paper", "paper-smoke")\n') == [1]
    assert _profile_name_tests('if variant == "super":\n    pass\n') == []
