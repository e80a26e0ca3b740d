"""Register a feature repository's groups, pipelines and views: exactly what ``plan`` shows.

    python -m jobs.apply --repo PATH [--set key=value]

A conflict (a pinned version registered with a different structure) is refused before anything
is written.
"""

from __future__ import annotations

import sys
from typing import Any

from jobs import _cli


def _body(spark: Any, args: Any, fs: Any, repo: Any) -> dict[str, Any]:
    from engine.repository import apply

    result = apply(fs, repo)
    print(result, file=sys.stderr)
    return {"applied": [str(c).splitlines()[0] for c in result.changed], "store": fs.root}


def main(argv: list[str] | None = None) -> int:
    return _cli.run("Apply a feature repository to its store's registry.", _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
