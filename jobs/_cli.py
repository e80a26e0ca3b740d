"""What every job shares: arguments, config, logging, the session, and exit codes.

Jobs do no business logic: they parse ``--config/--profile/--set [--start/--end]``, build the
session (or take Databricks' ambient one) and call one library function. An
:class:`engine.errors.EngineError` ends the job with exit code 2 and a one-line reason; any other
failure with exit code 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from engine.config import apply_overrides, from_mapping, load_yaml, parse_instant
from engine.errors import EngineError, InvalidArgumentError
from engine.redaction import SecretFilter, register_secrets, scrub, secret_values

log = logging.getLogger("jobs")


@dataclass(frozen=True)
class PeriodOverrides:
    """``periods:`` in the job config: optional slices of the demo's year (UTC, half-open), for short
    runs (the cluster tests, a quick try). Unset keys keep the full-year defaults.

    ``raw_start/raw_end`` keep only the raw rows in that range when the raw tables are first
    written; ``train_*`` and ``validation_*`` replace the training split (validation must start
    >= 30 days after train ends: the longest lookback). E.g. ``--set periods.train_end=2013-01-09``.
    """

    raw_start: datetime | None = None
    raw_end: datetime | None = None
    train_start: datetime | None = None
    train_end: datetime | None = None
    validation_start: datetime | None = None
    validation_end: datetime | None = None

    def raw(self) -> dict[str, datetime]:
        """Keyword arguments for ``engine.demo.load_raw``."""
        return {k: v for k, v in (("start", self.raw_start), ("end", self.raw_end)) if v is not None}

    def demo(self) -> Any:
        """The ``engine.demo.pipeline.DemoPeriods`` with these overrides applied."""
        from engine.demo.pipeline import TRAIN, VALIDATION, DemoPeriods
        from engine.temporal.ranges import TimeRange

        return DemoPeriods(
            train=TimeRange(self.train_start or TRAIN.start, self.train_end or TRAIN.end),
            validation=TimeRange(self.validation_start or VALIDATION.start, self.validation_end or VALIDATION.end),
        )


@dataclass(frozen=True)
class DemoJobConfig:
    """``conf/jobs/demo.yaml``."""

    root: str = "warehouse/demo"
    training: str = "conf/training/demo_gbt.yaml"
    monitoring: str = "conf/monitoring/demo.yaml"
    training_overrides: dict[str, Any] = field(default_factory=dict)
    backfill_step: timedelta = timedelta(days=92)
    periods: PeriodOverrides = field(default_factory=PeriodOverrides)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is an :class:`InvalidArgumentError` (one line, exit code 2)
    instead of a usage dump and ``SystemExit`` from inside ``main``."""

    def error(self, message: str) -> NoReturn:
        raise InvalidArgumentError(
            argument="command line", expected="the options listed by --help", found=message,
        )


def parser(description: str, *, time_range: bool = False) -> argparse.ArgumentParser:
    p = _Parser(description=description)
    p.add_argument("--config", default="conf/jobs/demo.yaml", help="job config YAML")
    p.add_argument("--profile", default="local", help="Spark profile: local | standalone | databricks")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    if time_range:
        p.add_argument("--start", help="start instant (ISO, UTC), inclusive")
        p.add_argument("--end", help="end instant (ISO, UTC), exclusive")
    return p


def load_config(args: argparse.Namespace) -> DemoJobConfig:
    data = apply_overrides(load_yaml(args.config), args.set, source=f"{args.config} + --set")
    register_secrets(secret_values(data))  # hidden from every log line, whatever logs them
    return from_mapping(DemoJobConfig, data, source=args.config)


def _hide_secrets_in_logs() -> None:
    """Put a :class:`SecretFilter` on every root handler (once): secret env variables and config
    values never reach a log line."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, SecretFilter) for f in handler.filters):
            handler.addFilter(SecretFilter())


def instant(value: str | None, name: str) -> datetime | None:
    return None if value is None else parse_instant(value, key=name, source=f"--{name}")


def run(description: str, body: Callable[[Any, argparse.Namespace, DemoJobConfig], Mapping[str, Any] | None],
        argv: list[str] | None, *, time_range: bool = False) -> int:
    """Parse, configure logging, build the session, call ``body``; print a one-line result.

    The command line and the config (including ``--start/--end``) are checked before the session
    is built, so a typo fails in a second with its reason, not after the JVM started.
    """
    try:
        args = parser(description, time_range=time_range).parse_args(argv)
    except EngineError as err:
        print(scrub(f"FAILED: {err}"), file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("py4j", "mlflow", "great_expectations", "alembic", "urllib3", "hyperopt"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _hide_secrets_in_logs()
    started = time.monotonic()
    try:
        config = load_config(args)
        if time_range:
            instant(args.start, "start")
            instant(args.end, "end")
        from engine.session import build_spark

        spark = build_spark(args.profile)
        spark.sparkContext.setLogLevel("ERROR")
        result = body(spark, args, config) or {}
    except EngineError as err:
        print(scrub(f"FAILED: {err}"), file=sys.stderr)
        return 2
    except Exception as err:  # a one-line reason, the traceback in the log
        log.exception("job failed")
        print(scrub(f"FAILED: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"), file=sys.stderr)
        return 1
    log.info("done in %.0fs", time.monotonic() - started)
    if result:
        import json

        print(json.dumps(result, default=str))
    return 0


def now() -> datetime:
    """The jobs' clock (library code takes times as parameters)."""
    return datetime.now(UTC)
