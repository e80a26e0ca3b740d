"""Run a whole feature repository: ingest missing sources, apply, backfill every pipeline, build
every training dataset and train, score every scoring job, monitor every monitoring job.

    python -m jobs.run --repo examples/flights          # what `make demo` runs
    python -m jobs.run --repo examples/flights --parallel 1   # backfill one pipeline at a time

The result line is the summary (per stage: seconds, Spark jobs, Delta commits in ``profile``); it is also written to
``<store root>/_reports/run_summary.json``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from jobs import _cli


def _arguments(p: argparse.ArgumentParser) -> None:
    _cli.parallel_option(p)


def _body(spark: Any, args: Any, fs: Any, repo: Any) -> dict[str, Any]:
    from engine.repository import run_all

    summary = run_all(fs, repo, scored_at=_cli.now(), workers=args.parallel)
    if fs.layout.is_local:
        out = fs.layout.reports("run_summary")
        out.mkdir(parents=True, exist_ok=True)
        (out / "run_summary.json").write_text(json.dumps(summary, indent=2, default=str))
        summary["summary_file"] = str(out / "run_summary.json")
    return summary


def main(argv: list[str] | None = None) -> int:
    return _cli.run("Run a whole feature repository end to end.", _body, argv, arguments=_arguments)


if __name__ == "__main__":
    raise SystemExit(main())
