"""The package's layering, checked from its imports: data flows one way, no room is too large.

Every ``import`` of an anybatch module counts, those under ``if TYPE_CHECKING:`` and inside
functions included: a type-only import is still a dependency a reader must follow. Run as a
script, it prints the facts: ``python tests/test_architecture.py``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "anybatch"

#: The layers, lowest first. A module may import its own layer and those below, never above.
LAYERS: list[tuple[str, list[str]]] = [
    ("leaves", ["_exceptions", "_options", "_view", "_botocore"]),
    ("engine", ["_engine"]),
    ("sources and outcomes", ["_sources", "records", "models", "_outcome", "_events"]),
    (
        "run",
        [
            "_handlers",
            "_context",
            "_logfilter",
            "_reading",
            "_report",
            "_observers",
            "_invocation",
            "_permanent",
            "_run",
            "_portal",
        ],
    ),
    ("facades", ["_processor", "_functions", "testing", "observe"]),
    (
        "sqs, idempotency, the command line, the package",
        ["sqs", "idempotency", "_cli", "__init__", "__main__"],
    ),
]

#: The largest a module may grow, in lines.
MAX_LINES = 600


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path) -> set[str]:
    """The anybatch modules *path* imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("anybatch."):
                    found.add(alias.name.removeprefix("anybatch."))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *(node.module or "").split(".")]).strip(".")
            elif node.module and node.module.startswith("anybatch"):
                target = node.module.removeprefix("anybatch").lstrip(".")
            else:
                continue
            for alias in node.names:  # "from . import _run" names a module
                candidate = f"{target}.{alias.name}".strip(".")
                found.add(candidate if candidate in ALL else target)
    return {m for m in found if m in ALL and m != name}


ALL = modules()
GRAPH = {name: imports_of(name, path) for name, path in ALL.items()}


def layer_of(name: str) -> int:
    top = name.split(".")[0]
    for index, (_, members) in enumerate(LAYERS):
        if top in members or name in members:
            return index
    raise AssertionError(f"module anybatch.{name} is in no layer: add it to LAYERS")


def folder_of(name: str) -> str:
    return str(ALL[name].parent.relative_to(PACKAGE))


def cycles() -> list[list[str]]:
    """The import cycles: strongly connected components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(GRAPH[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def upward_imports() -> list[str]:
    return [
        f"anybatch.{name} ({LAYERS[layer_of(name)][0]}) imports anybatch.{target} "
        f"({LAYERS[layer_of(target)][0]})"
        for name, targets in sorted(GRAPH.items())
        for target in sorted(targets)
        if layer_of(target) > layer_of(name)
    ]


def sizes() -> dict[str, int]:
    return {name: len(path.read_text().splitlines()) for name, path in ALL.items()}


def test_every_module_has_a_layer() -> None:
    for name in ALL:
        layer_of(name)


def test_no_module_imports_a_module_above_its_layer() -> None:
    assert upward_imports() == []


def test_no_import_circle_crosses_folders() -> None:
    crossing = [c for c in cycles() if len({folder_of(m) for m in c}) > 1]
    assert crossing == []


def test_no_module_is_larger_than_the_limit() -> None:
    assert {n: s for n, s in sizes().items() if s > MAX_LINES} == {}


@pytest.mark.parametrize("source", ["sqs", "kinesis", "dynamodb", "kafka", "firehose"])
def test_a_source_names_no_sibling_and_no_layer_above(source: str) -> None:
    name = f"_sources.{source}"
    siblings = {f"_sources.{other}" for other in ("sqs", "kinesis", "dynamodb", "kafka")}
    siblings |= {"_sources.firehose"}
    assert GRAPH[name] & (siblings - {name}) == set()
    assert "_sources._base" not in GRAPH or not (GRAPH["_sources._base"] & siblings), (
        "the sources' interface names its implementations"
    )


def test_the_outcomes_never_import_a_source() -> None:
    assert {m for m in GRAPH["_outcome"] if m.startswith("_sources") or m == "records"} == set()


def test_the_engine_knows_no_source_and_no_lambda() -> None:
    engine = [name for name in GRAPH if name.split(".")[0] == "_engine"]
    for name in engine:
        assert {t for t in GRAPH[name] if layer_of(t) > layer_of(name)} == set()
        assert {t for t in GRAPH[name] if not t.startswith("_engine")} <= {"_exceptions"}


if __name__ == "__main__":  # the facts, for a reader
    size = sizes()
    print(
        f"{len(ALL)} modules; largest: "
        + ", ".join(f"{n} {s}" for n, s in sorted(size.items(), key=lambda item: -item[1])[:5])
    )
    print("cycles:", cycles() or "none")
    print("upward imports:", upward_imports() or "none")
