"""The layer rule over the import graph (docs/architecture.md): which room may import which, no circle between
files, and the one list of imports deferred into functions on purpose.

The graph is built with `ast` from every Python file of the five packages: imports at module level AND inside
functions (a deferred import is still an arrow); imports under `if TYPE_CHECKING:` are left out (they never run).
An import of `pkg.mod.name` is an arrow to the most specific module file it names.

A module loaded by name (`import_module` on a table of commands or boards) has an arrow to every module of ours its
strings name. An import inside a function (of our modules or any package's, or an `import_module` call) is deferred
on purpose, for start-up time, or it is not allowed: `DEFERRED` below lists each one with why (issue 15: at most
20). `python tests/test_architecture.py` prints the report.
"""
from __future__ import annotations

import ast
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("vocabulary", "models", "cost_models", "firmware", "dse")
# room -> rooms it must not import (vocabulary: none of ours, checked apart)
FORBIDDEN = {
    "models": {"cost_models", "dse", "firmware"},
    "cost_models": {"dse", "firmware"},  # and models beyond PURE_MODELS
    "firmware": {"dse", "cost_models"},
}
# the torch-free descriptions of models that cost_models prices with (the network's layers and tasks, the firmware's
# kernel facts and arena plan both rooms must agree on, the firmware's PRNG); the configuration is vocabulary's
PURE_MODELS = {"models", "models.zoo", "models.tasks", "models.prng", "models.kernels", "models.arena"}
# Every import that runs inside a function (of our modules or any package's, and `import_module` calls), with why:
# the one list (issue 15: at most 20). An import inside a function that is not here fails the test, and so does an
# entry here that no longer exists. Key: (importing module, imported module or "import_module").
BY_NAME = "import_module"
COMMAND_TABLE = ("dse/cli.py's command table (COMMANDS): a command's module (Optuna, pandas, matplotlib, torch, "
                 "firmware) loads only when that command runs, so `dse --help`, `dse COMMAND --help` and a usage error "
                 "load none")
LAZY_API = ("dse's package API (PEP 562 __getattr__): `import dse.cli` must not load the cost models, Optuna or "
            "matplotlib")
ENVIRONMENT = ("the study file's environment check (numpy, torch): `dse show`, `dse report` and every start of `dse` "
               "read the study file without it")
SKLEARN = "scikit-learn takes 1.1-1.6 s to import; only the digits task reads through it"
DEFERRED = {
    ("dse.cli", BY_NAME): COMMAND_TABLE,
    ("dse", BY_NAME): LAZY_API,
    ("dse.study.file", "models.data"): ENVIRONMENT,
    ("dse.study.file", "models.quantize"): ENVIRONMENT,
    ("dse.search.workers", "torch"): ("torch reads its thread count when it loads: the worker limits threads first "
                                      "(dse.search.threads.limit_threads)"),
    ("models.data", BY_NAME): ("a task's data reader (models.datasets.<name>) loads with the task: HAPT's loads "
                               "scipy.signal, about 1.7 s, which no other task and not `dse report` needs"),
    ("models.data", "sklearn.datasets"): SKLEARN,
    ("models.data", "sklearn.model_selection"): SKLEARN,
    ("firmware.boards", BY_NAME): ("a board's module loads when that board is asked for: the DK's loads pyOCD "
                                   "(0.7 s), which the emulated board does not need"),
}
MOST_DEFERRED = 20


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (one of ours)
    line: int
    deferred: bool  # inside a function

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} (line {self.line}{', deferred' if self.deferred else ''})"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = ROOT, rooms=ROOMS) -> tuple[list[Import], set[str]]:
    """Every import between the rooms' modules, and the modules."""
    files = {module_name(p, root): p for room in rooms if (root / room).is_dir() for p in (root / room).rglob("*.py")}

    def resolve(name: str | None) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    imports: list[Import] = []
    for mod, path in files.items():
        package = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]

        def visit(node: ast.AST, deferred: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                    continue
                inner = deferred or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                if isinstance(child, ast.Import):
                    targets = [resolve(a.name) for a in child.names]
                elif isinstance(child, ast.ImportFrom):
                    base = child.module or ""
                    if child.level:
                        up = package[:len(package) - child.level + 1]
                        base = ".".join(up + ([child.module] if child.module else []))
                    targets = [resolve(f"{base}.{a.name}" if base else a.name) for a in child.names]
                else:
                    visit(child, inner)
                    continue
                for target in dict.fromkeys(targets):
                    if target and target != mod:
                        imports.append(Import(mod, target, child.lineno, deferred))

        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        visit(tree, False)
        if any(site.target == BY_NAME for site in deferred_sites(tree, mod, package)):
            # a module loaded by name (a table of commands, boards, ...): every string naming one of our modules
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in files:
                    if node.value != mod:
                        imports.append(Import(mod, node.value, node.lineno, True))
    return imports, set(files)


@dataclass(frozen=True)
class Site:
    source: str
    target: str  # the module imported (absolute), or BY_NAME for an import_module call
    line: int

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} (line {self.line})"


def deferred_sites(tree: ast.AST, mod: str, package: list[str]) -> list[Site]:
    """The import statements and import_module calls inside functions, whatever they import."""
    sites = []

    def visit(node: ast.AST, inside: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            now = inside or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if inside and isinstance(child, ast.Import):
                sites.extend(Site(mod, a.name, child.lineno) for a in child.names)
            elif inside and isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(package[:len(package) - child.level + 1] + ([base] if base else []))
                sites.append(Site(mod, base, child.lineno))
            elif inside and isinstance(child, ast.Call) and ast.unparse(child.func).endswith("import_module"):
                sites.append(Site(mod, BY_NAME, child.lineno))
            visit(child, now)

    visit(tree, False)
    return sites


def all_deferred(root: Path = ROOT, rooms=ROOMS) -> list[Site]:
    files = {module_name(p, root): p for room in rooms if (root / room).is_dir() for p in (root / room).rglob("*.py")}
    return [site for mod, path in files.items()
            for site in deferred_sites(ast.parse(path.read_text(encoding="utf-8")), mod,
                                       mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1])]


def room(module: str) -> str:
    return module.split(".")[0]


def forbidden(imports: list[Import]) -> list[Import]:
    """The arrows the layer rule forbids."""
    out = []
    for i in imports:
        src, dst = room(i.source), room(i.target)
        if src == dst:
            continue
        if (src == "vocabulary" or dst in FORBIDDEN.get(src, ())
                or (src == "cost_models" and dst == "models" and i.target not in PURE_MODELS)):
            out.append(i)
    # what cost_models may import from models must not pull in the rest of models (torch)
    out += [i for i in imports if i.source in PURE_MODELS and room(i.target) == "models" and i.target not in PURE_MODELS]
    return out


def circles(imports: list[Import], modules: set[str]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for i in imports:
        graph[i.source].add(i.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for start in sorted(modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return sorted(out)


def report(imports: list[Import], modules: set[str]) -> str:
    """What is left: the imports inside functions, by room."""
    sites = all_deferred()
    rooms = Counter(room(site.source) for site in sites)
    return (f"imports inside functions: {len(sites)} of at most {MOST_DEFERRED} "
            f"({', '.join(f'{r} {n}' for r, n in rooms.most_common())})")


def test_no_forbidden_arrow():
    imports, modules = import_graph()
    assert len(modules) > 100 and len(imports) > 300  # the graph really was read
    bad = forbidden(imports)
    assert not bad, "forbidden imports:\n" + "\n".join(map(str, bad))


def test_no_circle():
    imports, modules = import_graph()
    found = circles(imports, modules)
    assert not found, "circles between files:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_deferred_imports_are_the_listed_ones():
    """An import inside a function is an arrow (or a package) the module's header does not show: only the ones
    `DEFERRED` lists with why, at most MOST_DEFERRED."""
    sites = all_deferred()
    print(report(*import_graph()))
    unlisted = [str(site) for site in sites if (site.source, site.target) not in DEFERRED]
    assert not unlisted, "imports inside functions without a reason in DEFERRED:\n" + "\n".join(unlisted)
    gone = sorted(set(DEFERRED) - {(site.source, site.target) for site in sites})
    assert not gone, f"DEFERRED lists imports that no longer exist: {gone}"
    assert len(sites) <= MOST_DEFERRED


def test_dse_help_loads_no_heavy_package():
    """`dse --help` (and a usage error) load no command's module, hence none of the heavy packages (start-up time:
    benchmarks/cli_startup.py measures it)."""
    import json
    import subprocess

    probe = ("import contextlib, io, json, sys\nfrom dse.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
             "    codes = [main(['--help']), main(['predict', '--help']), main(['nonsense'])]\n"
             "print(json.dumps([codes, sorted(sys.modules)]))\n")
    codes, loaded = json.loads(subprocess.run([sys.executable, "-c", probe], cwd=ROOT, check=True, text=True,
                                              capture_output=True).stdout)
    assert codes == [0, 0, 2]
    heavy = {"torch", "optuna", "pandas", "matplotlib", "seaborn", "scipy", "numpy", "sqlalchemy"}
    assert sorted({m.split(".")[0] for m in loaded} & heavy) == []
    assert not [m for m in loaded if m.startswith("dse.commands")]  # no command's module
    assert not [m for m in loaded if m.split(".")[0] in ("cost_models", "models", "firmware")]


def test_the_parser_names_the_calibration_folder_variable_the_cost_models_read():
    from cost_models.user_data import ENV
    from dse.parser import CALIBRATION_ENV

    assert CALIBRATION_ENV == ENV


def test_vocabulary_needs_only_the_standard_library():
    """The core imports nothing outside the standard library (not even numpy)."""
    for path in (ROOT / "vocabulary").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for name in names:
                assert name.split(".")[0] in sys.stdlib_module_names, f"{path.name}: imports {name}"


def test_every_room_is_packaged():
    """A fresh (non-editable) install holds every room, the core included."""
    import tomllib

    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    assert sorted(r for r in ROOMS if f"{r}*" not in include) == []


def test_the_rule_catches_what_it_forbids(tmp_path):
    """A deferred arrow from firmware to cost_models, one from models to dse, and a circle made of a deferred
    import are found; an import under TYPE_CHECKING is not an arrow."""
    files = {
        "vocabulary/__init__.py": "",
        "models/__init__.py": "",
        "models/a.py": "def f():\n    from dse import cli\n",
        "models/zoo.py": "from .a import f\n",
        "models/b.py": "from importlib import import_module\nT = ('dse.cli',)\ndef g():\n    import_module(T[0])\n",
        "cost_models/__init__.py": "",
        "cost_models/p.py": "from models.zoo import x\nfrom . import q\n",
        "cost_models/q.py": "def g():\n    from .p import y\n",
        "cost_models/r.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from firmware import fw\n",
        "firmware/__init__.py": "",
        "firmware/fw.py": "def h():\n    from cost_models.p import z\n",
        "dse/__init__.py": "",
        "dse/cli.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    imports, modules = import_graph(tmp_path)
    found = {(i.source, i.target, i.deferred) for i in forbidden(imports)}
    assert found == {("models.a", "dse.cli", True), ("firmware.fw", "cost_models.p", True),
                     ("models.b", "dse.cli", True),  # a module loaded by name
                     ("models.zoo", "models.a", False)}  # a pure models module pulling in the rest of models
    assert {(s.source, s.target) for s in all_deferred(tmp_path)} == {
        ("models.a", "dse"), ("models.b", BY_NAME), ("cost_models.q", "cost_models.p"), ("firmware.fw", "cost_models.p")}
    assert circles(imports, modules) == [["cost_models.p", "cost_models.q"]]


if __name__ == "__main__":
    graph, names = import_graph()
    print(report(graph, names))
    for arrow in forbidden(graph):
        print(f"forbidden: {arrow}")
    for component in circles(graph, names):
        print(f"circle: {' <-> '.join(component)}")
