"""Tune, train and register a training config's model on its latest training dataset.

    python -m jobs.train --repo PATH --training NAME [--set training.NAME.model.max_evals=4]
"""

from __future__ import annotations

import argparse
from typing import Any

from jobs import _cli


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--training", required=True, help="a training config of the repository")
    p.add_argument("--dataset-version", type=int, help="train on this dataset version (default: the latest)")


def _check(args: Any, repo: Any) -> None:
    repo.get("training", args.training, argument="--training")


def _body(spark: Any, args: Any, fs: Any, repo: Any) -> dict[str, Any]:
    from engine.repository import train

    trained = train(fs, repo, args.training, dataset_version=args.dataset_version)
    reg = trained.registration
    return {"model": trained.model_uri, "metrics": trained.training.metrics,
            "baseline_metrics": trained.training.baseline_metrics, "champion": None if reg is None else reg.promoted}


def main(argv: list[str] | None = None) -> int:
    return _cli.run("Train and register a model.", _body, argv, arguments=_arguments, check=_check)


if __name__ == "__main__":
    raise SystemExit(main())
