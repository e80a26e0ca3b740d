"""Show what ``apply`` would create or change in the registry for a feature repository.

    python -m jobs.plan --repo PATH [--set key=value]

Nothing is written. The result line lists the changes (empty: the registry matches the repository).
"""

from __future__ import annotations

import sys
from typing import Any

from jobs import _cli


def _body(spark: Any, args: Any, fs: Any, repo: Any) -> dict[str, Any]:
    from engine.repository import plan

    result = plan(fs, repo)
    print(result, file=sys.stderr)
    return {"plan": "no changes" if not result.changed else f"{len(result.changed)} change(s)", **result.to_dict()}


def main(argv: list[str] | None = None) -> int:
    return _cli.run("Show what apply would change in the registry (writes nothing).", _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
