"""Hyperparameter search spaces: one typed entry per parameter, checked, then turned into hyperopt.

In YAML (``conf/training/*.yaml``)::

    search_space:
      learning_rate: {dist: loguniform, low: 0.01, high: 0.3}
      max_depth:     {dist: quniform, low: 2, high: 8, q: 1, type: int}
      C:             {dist: choice, options: [0.01, 0.1, 1.0]}

Distributions (hyperopt's ``hp.*``):

* ``uniform`` / ``loguniform``: a float in [low, high] (``loguniform``: uniform in log space, low > 0);
* ``quniform`` / ``qloguniform``: the same rounded to a multiple of ``q``; ``type: int`` makes it
  an integer;
* ``choice``: one of ``options``.

Checking needs no Spark, hyperopt or MLflow: it runs before anything starts.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from engine.errors import ConfigError

__all__ = ["DISTRIBUTIONS", "ParamSpace", "check_param_space", "fmin_kwargs", "quick_polling", "to_hyperopt"]

Distribution = Literal["uniform", "loguniform", "quniform", "qloguniform", "choice"]
DISTRIBUTIONS: tuple[str, ...] = ("uniform", "loguniform", "quniform", "qloguniform", "choice")
_RANGED = ("uniform", "loguniform", "quniform", "qloguniform")
_QUANTISED = ("quniform", "qloguniform")


@dataclass(frozen=True)
class ParamSpace:
    """The distribution hyperopt samples one parameter from."""

    dist: Distribution
    low: float | None = None
    high: float | None = None
    q: float | None = None
    options: list[Any] | None = None
    type: Literal["float", "int"] = "float"  # the YAML key; `int` rounds quantised draws to int


def check_param_space(name: str, space: ParamSpace, *, source: str, key: str) -> None:
    """Raise :class:`ConfigError` (naming ``key``) unless ``space`` is a usable distribution."""

    def fail(field: str, expected: str, found: Any, hint: str = "") -> ConfigError:
        return ConfigError(
            source=source, key=f"{key}.{field}" if field else key, expected=expected, found=repr(found),
            hint=hint, parameter=name,
        )

    if space.dist not in DISTRIBUTIONS:
        raise fail("dist", f"one of {list(DISTRIBUTIONS)}", space.dist)
    if space.type not in ("float", "int"):
        raise fail("type", "'float' or 'int'", space.type)
    if space.dist == "choice":
        if not space.options:
            raise fail("options", "a non-empty list of values for dist 'choice'", space.options)
        for field, value in (("low", space.low), ("high", space.high), ("q", space.q)):
            if value is not None:
                raise fail(field, "no value: dist 'choice' takes only `options`", value)
        if space.type != "float":
            raise fail("type", "no `type` for dist 'choice' (the options are used as given)", space.type)
        return
    if space.options is not None:
        raise fail("options", f"no options: dist {space.dist!r} takes low/high", space.options,
                   "Use dist: choice to pick from a list.")
    low, high = space.low, space.high
    if low is None or not math.isfinite(low):
        raise fail("low", f"a finite number for dist {space.dist!r}", low)
    if high is None or not math.isfinite(high):
        raise fail("high", f"a finite number for dist {space.dist!r}", high)
    if low >= high:
        raise fail("low", f"low < high (high is {high})", low)
    if space.dist in ("loguniform", "qloguniform") and low <= 0:
        raise fail("low", f"low > 0 for dist {space.dist!r} (it samples in log space)", low)
    if space.dist in _QUANTISED:
        if space.q is None or not math.isfinite(space.q) or space.q <= 0:
            raise fail("q", f"a step q > 0 for dist {space.dist!r}", space.q)
    elif space.q is not None:
        raise fail("q", f"no q for dist {space.dist!r}", space.q, "Use quniform/qloguniform for steps.")
    if space.type == "int" and space.dist not in _QUANTISED:
        raise fail("type", f"type 'int' only with quniform/qloguniform, not {space.dist!r}", space.type,
                   "Use dist: quniform with q: 1 for an integer range.")


def to_hyperopt(search_space: Mapping[str, ParamSpace]) -> dict[str, Any]:
    """The hyperopt space (a dict of ``hp.*`` nodes) for a checked search space."""
    from hyperopt import hp
    from hyperopt.pyll import scope

    result: dict[str, Any] = {}
    for name, space in search_space.items():
        node: Any
        if space.dist == "choice":
            node = hp.choice(name, list(space.options or []))
        elif space.dist == "uniform":
            node = hp.uniform(name, space.low, space.high)
        elif space.dist == "loguniform":
            node = hp.loguniform(name, math.log(space.low or 0), math.log(space.high or 0))
        elif space.dist == "quniform":
            node = hp.quniform(name, space.low, space.high, space.q)
        else:  # qloguniform
            node = hp.qloguniform(name, math.log(space.low or 0), math.log(space.high or 0), space.q)
        result[name] = scope.int(node) if space.type == "int" else node
    return result


def fmin_kwargs(config: Any, trial_log: Any) -> dict[str, Any]:
    """Arguments of ``hyperopt.fmin`` shared by both runners (``config``: a TrainingConfig)."""
    import numpy as np
    from hyperopt import rand, tpe

    return {
        "space": to_hyperopt(config.search_space),
        "algo": tpe.suggest if config.algo == "tpe" else rand.suggest,
        "max_evals": config.max_evals,
        "rstate": np.random.default_rng(config.seed),
        "timeout": None if config.timeout is None else config.timeout.total_seconds(),
        "show_progressbar": trial_log.progress,
        "verbose": True,  # hyperopt reports progress only when verbose
        "return_argmin": False,
    }


POLL_SECONDS = 0.2  # how often hyperopt looks for finished trials and dispatches queued ones


class _CappedSleep:
    """The ``time`` module with ``sleep`` capped at ``cap`` seconds (see :func:`quick_polling`)."""

    def __init__(self, cap: float) -> None:
        import time

        self._time, self.cap = time, cap

    def __getattr__(self, name: str) -> Any:
        return getattr(self._time, name)

    def delay(self, seconds: float) -> float:
        return min(seconds, self.cap)

    def sleep(self, seconds: float) -> None:
        self._time.sleep(self.delay(seconds))


@contextlib.contextmanager
def quick_polling(seconds: float = POLL_SECONDS) -> Iterator[None]:
    """Let ``SparkTrials`` hand over finished trials every ``seconds`` instead of every second.

    Between one trial's end and the next trial's start hyperopt 0.3.0 sleeps twice: its
    ``FMinIter`` polls for finished trials every ``poll_interval_secs`` = 1 s (not settable through
    ``fmin``), and ``SparkTrials``' dispatcher thread looks for queued trials every second (fixed).
    The demo's 8 trials, 2 at a time, lost ~1-2 s per hand-over (search 40.2 s -> 33.6 s with the
    same trials and results). While the block runs, those two modules see a ``time`` whose
    ``sleep`` is capped; anything else is unchanged, and nothing is patched if hyperopt no longer
    uses ``time`` that way. Which trials run, and their results, do not depend on the timing
    (``max_queue_len`` is 1: one suggestion per draw, in order).
    """
    import importlib
    import time

    modules = [importlib.import_module(f"hyperopt.{name}") for name in ("fmin", "spark")]  # `hyperopt.fmin`: a function
    capped = _CappedSleep(seconds)
    patched = [m for m in modules if getattr(m, "time", None) is time]
    for module in patched:
        module.time = capped  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module in patched:
            module.time = time  # type: ignore[attr-defined]
