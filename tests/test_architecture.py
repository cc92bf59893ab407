"""Architecture checks: no import cycles between the project's modules, the trial contract and its
readers, and tuners that import neither torch nor a table before they connect to NNI.

The import graph is read from the source with ``ast``, without importing anything. An edge A -> B is any
``import`` or ``from ... import`` in module A that names module B, wherever it stands: at module scope
(also inside ``if``/``try``) and inside functions and methods. A function-level (lazy) import does not run
when A is imported, but it is still a dependency: the two cycles this test was written against
(``nni_nas_bench.latency`` <-> ``search_spaces.mobilenet``, ``nni_nas_bench.tabular.table`` ->
``nni_nas_bench.trial`` -> ``nni_nas_bench.tabular.trial``) were both closed by lazy imports, and each
made a light module pull in a heavy one. Not edges: imports under ``if TYPE_CHECKING:`` (types only), the
parent packages Python initialises on the way to a submodule (package mechanics, not a dependency of
the importing module), and registries that load ``"module:Class"`` strings with ``importlib`` (plugins
by name: ``search_spaces.SPACES``, ``nni_nas_bench.strategies``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("nni_nas_bench", "search_spaces", "analysis")
TUNER_MODULES = ("benchmark", "multi_trial", "random_baseline", "serving", "journal", "ledger", "validators")


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the checked packages (notebooks excluded)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            if "notebooks" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_modules(tree: ast.Module, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The modules of ``known`` that the import statements of ``tree`` (module ``module``) name.

    ``import a.b`` names a.b; ``from a import b`` names a.b when that is a module, else a (b is a name
    defined in a); relative imports are resolved against the module's package.
    """
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                names.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in names if name in known and name != module}


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (see the module docstring for what counts)."""
    files = module_files()
    known = set(files)
    return {module: imported_modules(ast.parse(path.read_text(), filename=str(path)), module,
                                     path.name == "__init__.py", known)
            for module, path in files.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan), as a module path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                connect(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_cycle_through(graph, set(component)) for component in components]


def _cycle_through(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle from the component's first module back to itself, for the failure message."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ in sorted(graph[node] & component):
                if succ == start:
                    return [*paths[node], start]
                if succ not in paths:
                    paths[succ] = [*paths[node], succ]
                    following.append(succ)
        frontier = following
    return sorted(component)


def test_no_import_cycles() -> None:
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles (move the shared code into a module both can import):\n" + "\n".join(
        " -> ".join(cycle) for cycle in cycles)


def test_cycle_finder_names_a_cycle_and_reads_lazy_imports(tmp_path: Path) -> None:
    """The finder reports a cycle closed by a function-level import, and not one under TYPE_CHECKING."""
    a = ast.parse("import b\n")
    b = ast.parse("def f():\n    from a import x\n")
    c = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\n")
    graph = {name: imported_modules(tree, name, False, {"a", "b", "c"}) for name, tree in
             (("a", a), ("b", b), ("c", c))}
    graph["a"].add("c")
    assert find_cycles(graph) == [["a", "b", "a"]]


def test_contract_module_imports_only_the_standard_library() -> None:
    """The trial contract is imported by tuners before they connect: nothing heavy, nothing of the project."""
    tree = ast.parse((REPO / "nni_nas_bench" / "contract.py").read_text())
    imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert {name.split(".")[0] for name in imported} <= set(sys.stdlib_module_names) | {"__future__"}, imported


def test_no_private_names_imported_across_packages() -> None:
    """No module reads a private name (``from x import _y``) of another package: what packages share is
    public (the journal once read the analysis' ``_own_parameters``; it is now the contract's
    ``read_parameters``). Within one package (a strategy reusing a sibling's helper) it is the package's
    own business."""
    offenders = []
    for module, path in module_files().items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                continue
            private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
            if private and node.module.split(".")[0] in PACKAGES and node.module.rpartition(".")[0] != package:
                offenders.append(f"{module}: from {node.module} import {', '.join(private)}")
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("module", TUNER_MODULES)
def test_tuner_module_imports_no_torch(module: str) -> None:
    """NNI gives a tuner process 10 s to connect, counted from its start, and builds the tuner first: its
    module must not import torch (seconds on a busy machine), the analysis (pandas' readers, matplotlib)
    or a search space."""
    heavy = ("torch", "analysis", "search_spaces", "matplotlib", "nni_nas_bench.tabular.table")
    code = (f"import sys; import nni_nas_bench.tuners.{module}; "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"nni_nas_bench.tuners.{module} imports {out.stdout.strip()} at start"


def test_every_strategy_is_registered_once_by_its_own_name() -> None:
    """One registration mechanism (STRATEGIES: name -> module:Class), and a method's module and class
    attribute `name` are its registered name, so the three can never disagree."""
    from nni_nas_bench.strategies import STRATEGIES, get_strategy_class

    package = REPO / "nni_nas_bench" / "strategies"
    for name, path in STRATEGIES.items():
        module, _, _ = path.partition(":")
        assert module == f"nni_nas_bench.strategies.{name}" and (package / f"{name}.py").is_file(), path
        assert get_strategy_class(name).name == name
    sources = "".join(p.read_text() for p in package.glob("*.py"))
    assert "register_strategy" not in sources


def test_every_keyword_of_a_one_shot_strategy_is_a_recorded_setting() -> None:
    """A one-shot method declares its settings once (``setting_names``), and ``settings`` (written to every
    trace, checkpoint and result row) and ``extra_repr`` come from them: a constructor keyword missing from
    that list would change the search without being recorded. Inputs (where the data is, where to write,
    which device) are not settings."""
    import inspect

    from nni_nas_bench.strategies import STRATEGIES, get_strategy_class
    from nni_nas_bench.strategies.one_shot import OneShotStrategy

    inputs = {"self", "dataset", "data_root", "device", "output_dir", "checkpoint_dir"}
    missing = {}
    for name in STRATEGIES:
        cls = get_strategy_class(name)
        if not issubclass(cls, OneShotStrategy):
            continue
        keywords = {p.name for p in inspect.signature(cls.__init__).parameters.values()
                    if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD}
        unrecorded = keywords - inputs - set(cls.setting_names)
        if unrecorded:
            missing[name] = sorted(unrecorded)
        strategy = cls()
        assert list(strategy.settings) == list(cls.setting_names), name
        if cls.extra_repr is OneShotStrategy.extra_repr:  # StacNAS words its own (one-level vs bilevel)
            assert all(f"{n}=" in repr(strategy) for n in cls.repr_names), name
    assert not missing, f"constructor keywords that are not recorded settings: {missing}"


def test_no_test_file_imports_another() -> None:
    """Helpers shared by several test files live in support modules (tests/support.py, tests/nnictl_session.py,
    tests/simulated_manager.py, conftest), so each test file runs alone and moving a test never breaks another."""
    offenders = []
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            offenders += [f"{path.relative_to(REPO)}: {name}" for name in names
                          if name.rpartition(".")[2].startswith("test_") and name.startswith("tests")]
    assert not offenders, offenders
