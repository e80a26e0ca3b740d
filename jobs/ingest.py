"""Write a repository's sources from their loaders, one Delta commit each.

    python -m jobs.ingest --repo PATH --source NAME [--source NAME ...] [--only-missing]
    python -m jobs.ingest --repo PATH --all [--only-missing]

``--all`` writes every source that has a loader, inputs first.
"""

from __future__ import annotations

import argparse
from typing import Any

from jobs import _cli


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", action="append", help="a source with a loader (repeatable, or a,b)")
    p.add_argument("--all", action="store_true", help="every source with a loader")
    p.add_argument("--only-missing", action="store_true", help="leave tables that exist as they are")


def _check(args: Any, repo: Any) -> None:
    _cli.names_or_all(args.source, args.all, option="source", section="sources", repo=repo)


def _body(spark: Any, args: Any, fs: Any, repo: Any) -> dict[str, Any]:
    from engine.repository import ingest
    from engine.repository.run_features import ingest_order

    order = ingest_order(repo, None if args.all else _cli.names(args.source))
    wanted = set(order) if args.all else set(_cli.names(args.source))
    return {"ingested": [ingest(fs, repo, name, only_missing=args.only_missing) for name in order if name in wanted]}


def main(argv: list[str] | None = None) -> int:
    return _cli.run("Write a repository's sources from their loaders.", _body, argv, arguments=_arguments, check=_check)


if __name__ == "__main__":
    raise SystemExit(main())
