"""Architecture rules checked on the source (no Spark): no import cycle between the engine's modules
(runtime imports, including those inside functions; ``if TYPE_CHECKING:`` imports are type-only),
no module over 400 lines, nothing in the package imports the examples or the jobs, and library code
never builds a session or changes a session setting."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "engine"
MAX_LINES = 400


def modules() -> dict[str, Path]:
    out = {}
    for path in ENGINE.rglob("*.py"):
        parts = list(path.relative_to(ENGINE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def test_no_import_cycle_in_the_engine() -> None:
    mods = modules()
    graph = {name: imports(name, path, set(mods)) for name, path in mods.items()}
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_module_over_the_size_limit() -> None:
    sizes = {str(p.relative_to(ENGINE.parent)): len(p.read_text().splitlines()) for p in ENGINE.rglob("*.py")}
    assert not {k: v for k, v in sizes.items() if v > MAX_LINES}


def test_the_engine_imports_neither_examples_nor_jobs() -> None:
    for path in ENGINE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert not name.startswith(("examples", "jobs", "flights_")), f"{path}: imports {name}"


def test_library_code_builds_no_session_and_changes_no_setting() -> None:
    allowed = {ENGINE / "session.py"}
    for path in ENGINE.rglob("*.py"):
        if path in allowed:
            continue
        text = path.read_text()
        for needle in ("getOrCreate(", "spark.conf.set(", ".setLogLevel(", "mlflow.set_tracking_uri(",
                       "mlflow.set_registry_uri("):
            assert needle not in text or path.name == "tracking.py", f"{path.relative_to(ENGINE.parent)}: {needle}"
