"""Drift of a scoring job's predictions against the training rows, and realised metrics.

    python -m jobs.monitor --repo PATH --monitoring NAME
"""

from __future__ import annotations

import argparse
from typing import Any

from jobs import _cli


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--monitoring", required=True, help="a monitoring job of the repository")


def _check(args: Any, repo: Any) -> None:
    repo.get("monitoring", args.monitoring, argument="--monitoring")


def _body(spark: Any, args: Any, fs: Any, repo: Any) -> dict[str, Any]:
    from engine.repository import monitor

    return monitor(fs, repo, args.monitoring, scored_at=_cli.now())


def main(argv: list[str] | None = None) -> int:
    return _cli.run("Monitor drift and realised performance.", _body, argv, arguments=_arguments, check=_check)


if __name__ == "__main__":
    raise SystemExit(main())
