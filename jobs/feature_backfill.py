"""Backfill (or incrementally extend) a repository's feature pipelines over [--start, --end).

    python -m jobs.feature_backfill --repo PATH --pipeline NAME [--start 2013-01-01 --end 2014-01-01]
    python -m jobs.feature_backfill --repo PATH --all [--parallel 4]

Without --start/--end a pipeline's declared ``backfill`` range is used. Chunks already done are
skipped (resume); ``--force`` recomputes them; each chunk replaces exactly its own range. Several
pipelines run up to ``--parallel`` at a time, each after the chosen pipelines whose groups it reads.
"""

from __future__ import annotations

import argparse
from typing import Any

from jobs import _cli


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pipeline", action="append", help="a pipeline of the repository (repeatable, or a,b)")
    p.add_argument("--all", action="store_true", help="every pipeline of the repository")
    p.add_argument("--force", action="store_true", help="recompute chunks already done")
    _cli.parallel_option(p)


def _check(args: Any, repo: Any) -> None:
    _cli.names_or_all(args.pipeline, args.all, option="pipeline", section="pipelines", repo=repo)


def _body(spark: Any, args: Any, fs: Any, repo: Any) -> dict[str, Any]:
    from engine.repository import backfill, plan
    from engine.repository.flow import pipeline_dependencies
    from engine.repository.schedule import run_ordered

    current = plan(fs, repo)
    chosen = _cli.names_or_all(args.pipeline, args.all, option="pipeline", section="pipelines", repo=repo)
    start, end = _cli.instant(args.start, "start"), _cli.instant(args.end, "end")
    done = run_ordered(pipeline_dependencies(repo, chosen),
                       lambda name: backfill(fs, repo, name, start=start, end=end, force=args.force, current=current),
                       workers=args.parallel)
    return {"feature_backfill": [done[name] for name in chosen]}


def main(argv: list[str] | None = None) -> int:
    return _cli.run("Backfill a feature repository's pipelines.", _body, argv, time_range=True,
                    arguments=_arguments, check=_check)


if __name__ == "__main__":
    raise SystemExit(main())
