"""Build a training config's point-in-time training dataset (its view's next dataset version).

    python -m jobs.build_training_data --repo PATH --training NAME
"""

from __future__ import annotations

import argparse
from typing import Any

from jobs import _cli


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--training", required=True, help="a training config of the repository")


def _check(args: Any, repo: Any) -> None:
    repo.get("training", args.training, argument="--training")


def _body(spark: Any, args: Any, fs: Any, repo: Any) -> dict[str, Any]:
    from engine.repository import build_training_data

    dataset = build_training_data(fs, repo, args.training)
    return {"training_dataset": f"{dataset.view_name} v{dataset.view_version} #{dataset.version}", "rows": dataset.rows,
            "path": dataset.path, "source_versions": dataset.source_versions}


def main(argv: list[str] | None = None) -> int:
    return _cli.run("Build a training dataset.", _body, argv, arguments=_arguments, check=_check)


if __name__ == "__main__":
    raise SystemExit(main())
