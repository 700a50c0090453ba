"""The package's import rules (STYLE.md, README "Imports go one way", docs/ARCHITECTURE.md).

Every import counts: absolute and relative ones, at module level and inside functions. A package may
import ``evdet.utils`` and the packages ALLOWED lists; inside ``evdet.experiments`` a room may import
the rooms before it in ROOMS; module-level imports inside one package form no cycle; ``evdet --help``
stays light.
"""

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "evdet"

# package -> packages it may import from (besides itself and the bottom-level ``utils``)
ALLOWED = {
    "utils": set(),
    "events": set(),
    "data": {"events"},
    "models": set(),
    "training": {"events", "data", "models"},
    "evaluation": {"events", "data", "models", "training"},
    "tracking": {"events", "data"},
    "deploy": {"events", "data", "models", "training"},
    "pseudo": {"events", "data", "models", "training", "evaluation", "tracking"},
    "experiments": {"events", "data", "models", "training", "evaluation", "tracking", "pseudo"},
    "interop": {"events", "data", "evaluation", "experiments"},
    "studies": {"events", "data", "models", "training", "evaluation", "tracking", "pseudo", "experiments"},
}
# the rooms of evdet.experiments, bottom first: a room may import itself and the rooms before it
ROOMS = ("records", "statistics", "running", "analysis", "designs", "report")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}


def _walk(node: ast.AST, module_level: bool):
    for child in ast.iter_child_nodes(node):
        if module_level and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        yield child
        yield from _walk(child, module_level)


def imported_modules(path: Path, module_level: bool = False) -> set[str]:
    """Dotted names of the evdet modules (or packages) ``path`` imports; relative imports resolved."""
    return imports_of(path.read_text(), module_name(path), path.name == "__init__.py", module_level)


def imports_of(source: str, module: str, is_package: bool, module_level: bool = False) -> set[str]:
    package = module if is_package else module.rsplit(".", 1)[0]
    found = set()
    for node in _walk(ast.parse(source), module_level):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
            names = subs if len(subs) == len(node.names) else [base, *subs]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n for n in names if n == "evdet" or n.startswith("evdet.")}
    return found


def imported_evdet_packages(path: Path) -> set[str]:
    return {n.split(".")[1] for n in imported_modules(path) if n.count(".") >= 1}


def test_imports_go_one_way():
    violations = []
    for package, allowed in ALLOWED.items():
        importable = allowed | ({"utils"} if package != "utils" else set())
        for path in (SRC / package).rglob("*.py"):
            for dep in imported_evdet_packages(path) - importable - {package}:
                if dep in ALLOWED or dep == "cli":
                    violations.append(f"{path.relative_to(SRC)} imports evdet.{dep}")
    assert not violations, "\n".join(violations)


def test_relative_imports_are_read():
    # resolved as the absolute ones: in evdet/data/preprocess/dataset.py, ".." is evdet.data
    source = "from ..labels import load_labels\nfrom . import inputs\nfrom ...models import detector\n"
    assert imports_of(source, "evdet.data.preprocess.dataset", False) == {
        "evdet.data.labels", "evdet.data.preprocess.inputs", "evdet.models.detector"}
    assert imports_of("def f():\n    from evdet.models import x\n", "evdet.data.a", False, module_level=True) == set()


def test_every_package_is_in_the_import_rules():
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").exists()} - {"cli", "configs"}
    assert packages <= set(ALLOWED), f"add {sorted(packages - set(ALLOWED))} to ALLOWED"


def test_rooms_of_the_lab_import_downwards():
    rooms = {p.name for p in (SRC / "experiments").iterdir() if (p / "__init__.py").exists()}
    assert rooms == set(ROOMS), f"rooms on disk {sorted(rooms)} != ROOMS"
    violations = []
    for i, room in enumerate(ROOMS):
        for path in (SRC / "experiments" / room).rglob("*.py"):
            for name in imported_modules(path):
                parts = name.split(".")
                if parts[:2] == ["evdet", "experiments"] and len(parts) > 2 and parts[2] in ROOMS[i + 1:]:
                    violations.append(f"{path.relative_to(SRC)} ({room}) imports {name}")
    assert not violations, "\n".join(violations)
    assert imported_modules(SRC / "experiments" / "__init__.py") == set()


def test_studies_use_only_public_names():
    private = []
    for path in (SRC / "studies").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("evdet."):
                private += [f"{path.name}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
    assert not private, "\n".join(private)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on.discard(comp[-1])
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_hand_made_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_inside_a_package():
    def package(m):
        return m.split(".")[1] if m.count(".") else ""

    graph = {m: {d for d in imported_modules(p, module_level=True)
                 if d in MODULES and d != m and package(d) == package(m)} for m, p in MODULES.items()}
    assert not _cycles(graph), _cycles(graph)


def test_readme_import_table_is_the_one_enforced():
    text = (ROOT / "README.md").read_text()
    start = text.index("| package | may import |")
    rows = {}
    for line in text[start:].splitlines()[2:]:
        m = re.fullmatch(r"\| `(\w+)` \| (.*) \|", line.strip())
        if not m:
            break
        rows[m.group(1)] = set(re.findall(r"`(\w+)`", m.group(2)))
    assert rows == ALLOWED


def test_utils_imports_nothing_from_evdet():
    for path in (SRC / "utils").rglob("*.py"):
        assert not imported_evdet_packages(path) - {"utils"}, path


def test_models_do_not_import_omegaconf_or_data():
    for path in (SRC / "models").rglob("*.py"):
        text = path.read_text()
        assert "omegaconf" not in text, path
        assert "evdet.data" not in text, path


def test_cli_help_does_not_import_torch():
    code = "import sys, evdet.cli; print('torch' in sys.modules, 'lightning' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
