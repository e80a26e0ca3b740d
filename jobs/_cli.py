"""What every job shares: arguments, the repository, logging, the session, and exit codes.

Jobs do no business logic: they parse ``--repo/--profile/--set`` (and their own options), load the
feature repository, build the session (or take Databricks' ambient one), open the repository's
store and call one library function from :mod:`engine.repository`. The result is one JSON line on
stdout and exit code 0; an :class:`engine.errors.EngineError` ends the job with exit code 2 and one
``FAILED: [ERROR_CLASS] ...`` line on stderr; any other failure with exit code 1.

The command line and the repository are checked before the session is built, so a typo fails in a
second with its reason, not after the JVM started.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NoReturn

from engine.config import parse_instant
from engine.errors import EngineError, InvalidArgumentError, TimeRangeError
from engine.redaction import SecretFilter, register_secrets, scrub, secret_values

log = logging.getLogger("jobs")

Body = Callable[[Any, argparse.Namespace, Any, Any], Mapping[str, Any] | None]


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is an :class:`InvalidArgumentError` (one line, exit code 2)
    instead of a usage dump and ``SystemExit`` from inside ``main``."""

    def error(self, message: str) -> NoReturn:
        raise InvalidArgumentError(argument="command line", expected="the options listed by --help", found=message)


def parser(description: str, *, time_range: bool = False) -> argparse.ArgumentParser:
    p = _Parser(description=description)
    p.add_argument("--repo", default=None,
                   help="the feature repository folder (default: $FF_REPO, else the working directory)")
    p.add_argument("--profile", default="local", help="Spark profile: local | standalone | databricks | your own")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a repository definition, e.g. pipelines.weather.backfill.end=2013-02-01")
    p.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE",
                   help="a Spark setting for the session this job builds (not on an ambient session)")
    if time_range:
        p.add_argument("--start", help="start instant (ISO, UTC), inclusive")
        p.add_argument("--end", help="end instant (ISO, UTC), exclusive")
    return p


def parallel_option(p: argparse.ArgumentParser) -> None:
    from engine.repository.schedule import WORKERS

    def count(value: str) -> int:
        if not value.isdigit() or int(value) < 1:
            raise argparse.ArgumentTypeError(f"expected a whole number >= 1, found {value!r}")
        return int(value)

    p.add_argument("--parallel", type=count, default=WORKERS, metavar="N",
                   help=f"pipelines backfilled at once, each after those it reads from (default {WORKERS})")


def instant(value: str | None, name: str) -> datetime | None:
    return None if value is None else parse_instant(value, key=name, source=f"--{name}")


def names(values: list[str] | None) -> list[str]:
    """``--x a --x b,c`` -> ``["a", "b", "c"]``."""
    return [n.strip() for v in values or [] for n in v.split(",") if n.strip()]


def names_or_all(values: list[str] | None, every: bool, *, option: str, section: str, repo: Any) -> list[str]:
    """``--<option> NAME ...`` or ``--all`` (exactly one of them): the chosen names of ``section``,
    each checked against the repository (an unknown one lists the known ones)."""
    chosen = names(values)
    if every == bool(chosen):
        raise InvalidArgumentError(argument=f"--{option}/--all", expected=f"one or more --{option} NAME, or --all",
                                   found=f"--{option} {values}, --all {every}")
    for name in chosen:
        repo.get(section, name, argument=f"--{option}")
    return list(getattr(repo, section)) if every else chosen


def now() -> datetime:
    """The jobs' clock (library code takes times as parameters)."""
    return datetime.now(UTC)


def _spark_conf(items: list[str]) -> dict[str, str]:
    conf = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidArgumentError(argument="--spark-conf", expected="key=value", found=repr(item))
        conf[key.strip()] = value
    return conf


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("py4j", "mlflow", "great_expectations", "alembic", "urllib3", "hyperopt"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:  # secret values never reach a log line
        if not any(isinstance(f, SecretFilter) for f in handler.filters):
            handler.addFilter(SecretFilter())


def _is_remote(spark: Any) -> bool:
    from engine.remote import is_remote

    return is_remote(spark)


def run(description: str, body: Body, argv: list[str] | None, *, time_range: bool = False,
        arguments: Callable[[argparse.ArgumentParser], None] | None = None,
        check: Callable[[argparse.Namespace, Any], None] | None = None) -> int:
    """Parse, load the repository, build the session, open the store, call ``body(spark, args,
    store, repo)``; print its result as one JSON line. ``check(args, repo)`` runs before Spark."""
    try:
        p = parser(description, time_range=time_range)
        if arguments is not None:
            arguments(p)
        args = p.parse_args(argv)
    except EngineError as err:
        print(scrub(f"FAILED: {err}"), file=sys.stderr)
        return 2
    _configure_logging()
    started = time.monotonic()
    try:
        from engine.repository import load_repository
        from engine.store.layout import StoreLayout

        # --set secrets are registered by load_repository (with the repository's own)
        register_secrets(secret_values(dict(item.partition("=")[::2] for item in args.spark_conf)))
        repo = load_repository(args.repo, overrides=args.set)
        if time_range:
            start, end = instant(args.start, "start"), instant(args.end, "end")
            if start is not None and end is not None and start >= end:  # refused now, not after the JVM started
                raise TimeRangeError(argument="--start/--end", expected="--start before --end (a forward range)",
                                     start=args.start, end=args.end)
        if check is not None:
            check(args, repo)
        overrides = _spark_conf(args.spark_conf)
        layout = StoreLayout.of(repo.store_root)
        if layout.is_local:
            overrides.setdefault("spark.sql.warehouse.dir", layout.spark_warehouse)
        from engine.session import build_spark

        spark = build_spark(args.profile, overrides)
        if not _is_remote(spark):
            spark.sparkContext.setLogLevel("ERROR")
        from engine.repository.profile import Profiler

        fs = repo.open_store(spark)
        profiler = Profiler(spark, fs.root)
        with profiler.stage(p.prog.removesuffix(".py")):
            result = dict(body(spark, args, fs, repo) or {})
        if "profile" not in result:  # jobs.run profiles its own stages
            result["profile"] = profiler.summary()
            log.info("profile:\n%s", profiler.table())
    except EngineError as err:
        print(scrub(f"FAILED: {err}"), file=sys.stderr)
        return 2
    except Exception as err:  # a one-line reason, the traceback in the log
        log.exception("job failed")
        print(scrub(f"FAILED: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"), file=sys.stderr)
        return 1
    log.info("done in %.0fs", time.monotonic() - started)
    print(json.dumps({**result, "seconds": round(time.monotonic() - started, 1)}, default=str))
    return 0
