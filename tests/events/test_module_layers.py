"""evdet.events modules import each other in one direction: no cycle, lazy imports included."""

import ast
from pathlib import Path

EVENTS = Path(__file__).resolve().parents[2] / "src" / "evdet" / "events"


def imported_submodules(path: Path, known: set[str]) -> set[str]:
    """evdet.events submodules that ``path`` imports anywhere (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            module = node.module if node.level == 0 else f"evdet.events.{node.module}"
            if module == "evdet.events":                          # from evdet.events import evt2
                found |= {a.name for a in node.names if a.name in known}
            elif module.startswith("evdet.events."):
                found.add(module.split(".")[2])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[2] for a in node.names if a.name.startswith("evdet.events.")}
    return found & known


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}                                    # 1 = on the stack, 2 = done

    def visit(node: str, stack: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep, stack + [dep])):
                return cycle
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node, [node])):
            return cycle
    return None


def test_find_cycle_on_hand_built_graphs():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]


def test_events_modules_have_no_import_cycle():
    modules = {p.stem for p in EVENTS.glob("*.py") if p.stem != "__init__"}
    graph = {m: imported_submodules(EVENTS / f"{m}.py", modules) - {m} for m in modules}
    assert graph["evt_stream"] >= {"evt2", "evt3"}                # the decoder drives the kernels
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))
