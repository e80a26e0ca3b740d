"""Score a batch with a registered model; features are looked up as of each spine row's time.

    python -m jobs.score_batch --repo PATH --scoring NAME
    python -m jobs.score_batch --repo PATH --model models:/NAME@ALIAS --spine TABLE --output TABLE \\
        [--start 2013-11-01 --end 2013-12-01] [--passthrough id,month]

TABLE is a source of the repository, a table name of the store (``<root>/tables/<name>``) or a
path. Each batch is one Delta commit of the output; re-scoring a batch replaces it.
"""

from __future__ import annotations

import argparse
from typing import Any

from jobs import _cli


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scoring", help="a scoring job of the repository (its model, spine, output, batches)")
    p.add_argument("--model", help="models:/NAME@ALIAS or models:/NAME/VERSION (overrides the scoring job's)")
    p.add_argument("--spine", help="the spine table (overrides the scoring job's)")
    p.add_argument("--output", help="the predictions table (overrides the scoring job's)")
    p.add_argument("--passthrough", action="append", help="spine columns to keep beside the predictions")


def _check(args: Any, repo: Any) -> None:
    from engine.errors import InvalidArgumentError

    if args.scoring is not None:
        repo.get("scoring", args.scoring, argument="--scoring")
    elif not (args.model and args.spine and args.output):
        raise InvalidArgumentError(argument="--scoring", expected="--scoring NAME, or --model, --spine and --output",
                                   found=f"--model {args.model}, --spine {args.spine}, --output {args.output}")
    if (args.start is None) != (args.end is None):
        raise InvalidArgumentError(argument="--start/--end", expected="both or neither", found=f"{args.start}, {args.end}")


def _body(spark: Any, args: Any, fs: Any, repo: Any) -> dict[str, Any]:
    from engine.repository import score
    from engine.temporal.ranges import TimeRange

    start, end = _cli.instant(args.start, "start"), _cli.instant(args.end, "end")
    batches = [TimeRange(start, end)] if start and end else None
    return score(fs, repo, args.scoring, scored_at=_cli.now(), model=args.model, spine=args.spine, output=args.output,
                 batches=batches, passthrough=_cli.names(args.passthrough) if args.passthrough else None)


def main(argv: list[str] | None = None) -> int:
    return _cli.run("Score a batch with a registered model.", _body, argv, time_range=True, arguments=_arguments,
                    check=_check)


if __name__ == "__main__":
    raise SystemExit(main())
