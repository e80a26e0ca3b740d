"""Run a Databricks source-format notebook locally, for tests and for trying a notebook without a
workspace::

    from engine.testing.notebooks import run_notebook
    ns = run_notebook("notebooks/01_feature_pipelines.py", spark, {"root": "/tmp/store"})
    ns["feature_group_rows"]          # any variable the notebook defined

The format: the first line is ``# Databricks notebook source``; cells are separated by lines
``# COMMAND ----------``; a cell whose lines all start with ``# MAGIC`` is a magic cell
(``%md`` markdown cells are skipped; other magics such as ``%sql`` or ``%pip`` are refused with an
error, since they have no local meaning here). Python cells run in order in one namespace that
holds:

* ``spark`` -- the session given (on Databricks: the ambient one);
* ``dbutils`` -- a minimal stand-in: ``dbutils.widgets.text/dropdown/get/getAll/remove/removeAll``
  and ``dbutils.notebook.exit(value)`` (stops the run; the value is returned as ``__exit__``);
* ``display(obj)`` -- prints a small table: a Spark DataFrame's first ``display_rows`` rows
  (``df.limit(n).toPandas().to_string()``), a pandas DataFrame likewise, anything else ``print``ed.

Widget values passed in override the defaults the notebook declares; a value for a widget the
notebook has not declared by the time it first reads one is an error (a typo would otherwise be
ignored silently, and the notebook run on its defaults). A failing cell
re-raises its own exception with a note naming the notebook and the cell.
"""

from __future__ import annotations

import contextlib
import linecache
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from engine.errors import InvalidArgumentError

__all__ = ["Cell", "NotebookExit", "Widgets", "make_dbutils", "make_display", "run_notebook", "split_cells"]

HEADER = "# Databricks notebook source"
SEPARATOR = "# COMMAND ----------"
MAGIC = "# MAGIC"
_SKIPPED_MAGICS = ("%md", "%md-sandbox")


@dataclass(frozen=True)
class Cell:
    """One cell: ``kind`` is "python" or the magic ("%md", "%sql", ...); ``line`` is 1-based."""

    index: int
    line: int
    kind: str
    source: str


def split_cells(text: str, *, name: str = "notebook") -> list[Cell]:
    """The cells of a Databricks source notebook, in order (empty cells dropped)."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != HEADER:
        raise InvalidArgumentError(
            argument="notebook", expected=f"a Databricks source notebook whose first line is {HEADER!r}",
            found=repr(lines[0][:80]) if lines else "an empty file", hint=f"In {name}.",
        )
    chunks: list[tuple[int, list[str]]] = [(2, [])]  # (first line number, lines)
    for number, line in enumerate(lines[1:], start=2):
        if line.strip() == SEPARATOR:
            chunks.append((number + 1, []))
        else:
            chunks[-1][1].append(line)
    cells: list[Cell] = []
    for first, body in chunks:
        leading = next((i for i, ln in enumerate(body) if ln.strip()), None)
        if leading is None:
            continue
        trailing = max(i for i, ln in enumerate(body) if ln.strip())
        cells.append(_cell(len(cells), first + leading, body[leading:trailing + 1]))
    return cells


def _cell(index: int, line: int, body: list[str]) -> Cell:
    if all(ln.startswith(MAGIC) or not ln.strip() for ln in body):
        text = [ln[len(MAGIC):].removeprefix(" ") for ln in body]
        first = text[0].strip().split(maxsplit=1)[0] if text[0].strip() else "%md"
        kind = first if first.startswith("%") else "%md"
        return Cell(index, line, kind, "\n".join(text))
    return Cell(index, line, "python", "\n".join(body))


class NotebookExit(Exception):  # noqa: N818 - mirrors dbutils.notebook.exit, not an error
    """Raised by ``dbutils.notebook.exit(value)`` to stop the notebook."""

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value


class Widgets:
    """``dbutils.widgets``: declared defaults, overridden by the values the caller passes."""

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self._given = {str(k): str(v) for k, v in (values or {}).items()}
        self._defaults: dict[str, str] = {}
        self._choices: dict[str, list[str]] = {}

    def text(self, name: str, defaultValue: str = "", label: str | None = None) -> None:  # noqa: N803 - Databricks' names
        self._defaults[name] = str(defaultValue)

    def dropdown(self, name: str, defaultValue: str, choices: Sequence[str], label: str | None = None) -> None:  # noqa: N803
        options = [str(c) for c in choices]
        if str(defaultValue) not in options:
            raise InvalidArgumentError(argument=f"widget {name}", expected=f"a default among {options}", found=repr(defaultValue))
        self._defaults[name] = str(defaultValue)
        self._choices[name] = options

    combobox = text

    def get(self, name: str) -> str:
        undeclared = self.undeclared()
        if undeclared:  # checked when the notebook first reads a widget: its declarations come first
            raise InvalidArgumentError(
                argument="widgets", expected=f"values for declared widgets only, {sorted(self._defaults)}",
                found=f"values for undeclared widgets {undeclared}", hint="A typo? Declare them or drop them.",
            )
        if name not in self._defaults:
            raise InvalidArgumentError(
                argument="widget", expected=f"a declared widget, one of {sorted(self._defaults)}", found=repr(name),
                hint="Declare it first with dbutils.widgets.text(name, default).",
            )
        value = self._given.get(name, self._defaults.get(name, ""))
        if name in self._choices and value not in self._choices[name]:
            raise InvalidArgumentError(argument=f"widget {name}", expected=f"one of {self._choices[name]}", found=repr(value))
        return value

    def getAll(self) -> dict[str, str]:  # noqa: N802 - Databricks' name
        return {name: self.get(name) for name in sorted(set(self._defaults) | set(self._given))}

    def remove(self, name: str) -> None:
        self._defaults.pop(name, None)
        self._choices.pop(name, None)

    def removeAll(self) -> None:  # noqa: N802 - Databricks' name
        self._defaults.clear()
        self._choices.clear()

    def undeclared(self) -> list[str]:
        """Values passed in for widgets the notebook never declared."""
        return sorted(set(self._given) - set(self._defaults))


class _Notebook:
    @staticmethod
    def exit(value: Any = "") -> None:
        raise NotebookExit(str(value))


@dataclass(frozen=True)
class _DBUtils:
    widgets: Widgets
    notebook: _Notebook


def make_dbutils(widgets: Mapping[str, Any] | None = None) -> _DBUtils:
    """The ``dbutils`` stand-in (widgets and notebook.exit only)."""
    return _DBUtils(widgets=Widgets(widgets), notebook=_Notebook())


def make_display(out: TextIO | None = None, *, rows: int = 20) -> Any:
    """``display(obj)`` printing a small table to ``out`` (default: stdout at call time)."""

    def display(obj: Any, *args: Any, **kwargs: Any) -> None:
        stream = out or sys.stdout
        if hasattr(obj, "limit") and hasattr(obj, "toPandas"):  # a Spark DataFrame
            text = obj.limit(rows).toPandas().to_string()
        elif hasattr(obj, "head") and hasattr(obj, "to_string"):  # a pandas DataFrame / Series
            text = obj.head(rows).to_string()
        else:
            text = str(obj)
        print(text, file=stream, flush=True)

    return display


def run_notebook(
    path: str | Path,
    spark: Any,
    widgets: Mapping[str, Any] | None = None,
    *,
    display_rows: int = 20,
    out: TextIO | None = None,
) -> dict[str, Any]:
    """Execute the notebook at ``path`` cell by cell with ``spark``; return its namespace. With ``out``,
    both ``display`` tables and the cells' printed output are written there."""
    source = Path(path)
    cells = split_cells(source.read_text(encoding="utf-8"), name=str(source))
    dbutils = make_dbutils(widgets)
    namespace: dict[str, Any] = {
        "__name__": "__main__", "__file__": str(source.resolve()),
        "spark": spark, "dbutils": dbutils, "display": make_display(out, rows=display_rows),
        "displayHTML": make_display(out, rows=display_rows),
    }
    for cell in cells:
        if cell.kind in _SKIPPED_MAGICS:
            continue
        if cell.kind != "python":
            raise InvalidArgumentError(
                argument="notebook", expected="Python and %md cells only", found=f"a {cell.kind} cell",
                hint=f"{source}, cell {cell.index + 1} (line {cell.line}): run it on Databricks, or rewrite it in Python.",
            )
        filename = f"{source}#cell{cell.index + 1}"
        linecache.cache[filename] = (len(cell.source), None, cell.source.splitlines(True), filename)  # tracebacks
        code = compile(cell.source, filename, "exec")
        try:
            # a cell's printed output goes where display() writes, as in a notebook's cell output
            with contextlib.redirect_stdout(out) if out is not None else contextlib.nullcontext():
                exec(code, namespace)  # running the notebook is the point
        except NotebookExit as stop:
            namespace["__exit__"] = stop.value
            break
        except Exception as err:
            err.add_note(f"in notebook {source}, cell {cell.index + 1} (line {cell.line})")
            raise
    undeclared = dbutils.widgets.undeclared()
    if undeclared:  # a notebook that never read a widget
        raise InvalidArgumentError(
            argument="widgets", expected=f"values for widgets that {source.name} declares",
            found=f"values for undeclared widgets {undeclared}",
        )
    return {k: v for k, v in namespace.items() if k != "__builtins__"}
