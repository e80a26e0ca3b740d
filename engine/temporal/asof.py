"""Point-in-time (as-of) joins for Spark DataFrames: ``pandas.merge_asof`` at cluster scale.

The point-in-time contract (stated once, here; every lookup in the engine goes through it):

* A right (feature) row with time ``e`` is visible to a left (spine) row at time ``t`` iff
  ``e <= t`` (``allow_exact_matches=True``, the default) or ``e < t`` (``False``), for
  ``direction="backward"``: never a row from the future. ``"forward"`` mirrors it (``e >= t``),
  ``"nearest"`` takes the closer of both, the earlier one on equal distance (as pandas).
* ``tolerance`` ``w`` (a lookback/TTL for backward joins) also requires ``|t - e| <= w``;
  beyond it the right columns are NULL.
* Row semantics: the whole matched right row is returned, NULL values included -- never a
  per-column "last non-null" fill that mixes values from different rows.
* Ties: among right rows with equal keys and equal time, the one with the greatest
  ``tie_breaker`` column(s) wins. Without a tie breaker, the row whose payload columns compare
  greatest (in column order, NULLs lowest) wins -- deterministic, independent of input order.
* Every left row comes out exactly once with its own columns unchanged, including duplicate
  rows and rows with a NULL key or NULL time (their right columns are NULL). Right rows with a
  NULL key or NULL time never match.
* Timestamps are compared as UTC instants (TIMESTAMP); TIMESTAMP_NTZ may only be compared
  with TIMESTAMP_NTZ. Dates, integers and floats work as time columns too.

Output columns: the left columns, then the right columns except the ``by`` key columns (a
right key column with a different name than its left partner is kept, as in pandas). The
right time column is kept so users can see how old each feature is; when it has the same name
as the left one it takes the right suffix (``ts_right`` by default). Other name clashes take
``suffixes`` (left, right) like pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from engine.errors import InvalidArgumentError
from engine.temporal import _asof_layout, _checks
from engine.temporal._asof_layout import whole_rows
from engine.temporal._asof_strategy import AsofPlan, Pass, choose, execute, forced_strategy
from engine.temporal._asof_sweep import KEY, TIME, RightSide

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from engine.temporal.layout import BucketedSource

__all__ = ["AsofLookup", "AsofPlan", "asof_join", "asof_join_many", "explain_asof", "explain_asof_many"]

DIRECTIONS = ("backward", "forward", "nearest")
HOT_KEY_SHARE = 0.02


@dataclass(frozen=True)
class AsofLookup:
    """One right table to join onto a spine with :func:`asof_join_many`.

    ``by`` are the right key columns and ``left_by`` the spine's (default: the same names);
    ``on`` is the right time column. ``features`` selects right columns (default: all but keys
    and time). Output columns are ``prefix + name`` (default prefix ``""``) and the right time
    column comes out as ``time_alias`` (default ``prefix + on``, or ``on + "_right"`` without a
    prefix when the spine has a column of that name). ``tolerance`` bounds how old (backward) a
    match may be: a lookback / TTL. ``source``: ``right`` laid out in hash buckets of its keys
    (:class:`~engine.temporal.layout.BucketedSource`, e.g. a feature group of the store); lookups
    whose sources are bucketed alike then shuffle only the spine (the ``layout`` strategy).
    """

    right: DataFrame
    on: str
    by: str | Sequence[str]
    left_by: str | Sequence[str] | None = None
    features: Sequence[str] | None = None
    tolerance: timedelta | float | int | None = None
    direction: str = "backward"
    allow_exact_matches: bool = True
    tie_breaker: str | Sequence[str] | None = None
    prefix: str = ""
    time_alias: str | None = None
    source: BucketedSource | None = None


def asof_join(
    left: DataFrame,
    right: DataFrame,
    *,
    on: str | None = None,
    left_on: str | None = None,
    right_on: str | None = None,
    by: str | Sequence[str] | None = None,
    left_by: str | Sequence[str] | None = None,
    right_by: str | Sequence[str] | None = None,
    tolerance: timedelta | float | int | None = None,
    direction: str = "backward",
    allow_exact_matches: bool = True,
    tie_breaker: str | Sequence[str] | None = None,
    suffixes: tuple[str, str] = ("", "_right"),
    hot_key_share: float | None = HOT_KEY_SHARE,
) -> DataFrame:
    """Join ``right`` onto ``left`` as of each left row's time (see the module docstring for
    the contract). Same parameters and result rows as ``pandas.merge_asof``; inputs need not be
    sorted. All arguments are checked against the schemas before any Spark job runs.

    ``hot_key_share``: for backward joins, a key owning more than one task's fair share of all
    rows (``1 / min(partitions, 2 * cores)``; and more than this share) is split into time
    slices so one key's history is not one task's work; on inputs estimated at two million rows or more one small sampling job finds such keys
    (smaller inputs need none); ``None`` turns the detection off (the join stays fully lazy),
    ``0`` slices every key. :func:`explain_asof` shows the strategy, hot keys and task sizes.
    """
    return execute(_asof_join_group(
        left, right, on=on, left_on=left_on, right_on=right_on, by=by, left_by=left_by, right_by=right_by,
        tolerance=tolerance, direction=direction, allow_exact_matches=allow_exact_matches, tie_breaker=tie_breaker,
        suffixes=suffixes, hot_key_share=hot_key_share,
    ))


def explain_asof(
    left: DataFrame,
    right: DataFrame,
    *,
    on: str | None = None,
    left_on: str | None = None,
    right_on: str | None = None,
    by: str | Sequence[str] | None = None,
    left_by: str | Sequence[str] | None = None,
    right_by: str | Sequence[str] | None = None,
    tolerance: timedelta | float | int | None = None,
    direction: str = "backward",
    allow_exact_matches: bool = True,
    tie_breaker: str | Sequence[str] | None = None,
    suffixes: tuple[str, str] = ("", "_right"),
    hot_key_share: float | None = HOT_KEY_SHARE,
) -> AsofPlan:
    """How :func:`asof_join` with the same arguments would run, without running the join: the
    strategy and why, estimated rows per task, hot keys and their time slices (finding those may
    run the same small sampling job the join would). ``print()`` it for a readable summary."""
    return _asof_join_group(
        left, right, on=on, left_on=left_on, right_on=right_on, by=by, left_by=left_by, right_by=right_by,
        tolerance=tolerance, direction=direction, allow_exact_matches=allow_exact_matches, tie_breaker=tie_breaker,
        suffixes=suffixes, hot_key_share=hot_key_share,
    ).plan


def _asof_join_group(
    left: DataFrame, right: DataFrame, *, on: str | None, left_on: str | None, right_on: str | None,
    by: str | Sequence[str] | None, left_by: str | Sequence[str] | None, right_by: str | Sequence[str] | None,
    tolerance: timedelta | float | int | None, direction: str, allow_exact_matches: bool,
    tie_breaker: str | Sequence[str] | None, suffixes: tuple[str, str], hot_key_share: float | None,
) -> Pass:
    _checks.require_dataframe(left, argument="left")
    _checks.require_dataframe(right, argument="right")
    l_on, r_on = _checks.resolve_on(on, left_on, right_on)
    if by is not None and (left_by is not None or right_by is not None):
        raise InvalidArgumentError(
            argument="by", expected="either `by` or `left_by`/`right_by`, not both",
            found=f"by={by!r}, left_by={left_by!r}, right_by={right_by!r}",
        )
    if by is not None:
        l_by = r_by = _checks.as_list(by, argument="by")
    else:
        if (left_by is None) != (right_by is None):
            raise InvalidArgumentError(
                argument="left_by" if left_by is None else "right_by",
                expected="left_by and right_by together", found=f"left_by={left_by!r}, right_by={right_by!r}",
            )
        l_by = _checks.as_list(left_by, argument="left_by")
        r_by = _checks.as_list(right_by, argument="right_by")
    if not isinstance(suffixes, (tuple, list)) or len(suffixes) != 2 or not all(isinstance(s, str) for s in suffixes):
        raise InvalidArgumentError(argument="suffixes", expected="a pair of strings", found=repr(suffixes))

    _checks.require_columns(left, [l_on], argument="left_on" if on is None else "on", side="left")
    _checks.require_columns(right, [r_on], argument="right_on" if on is None else "on", side="right")
    _checks.require_columns(left, l_by, argument="by" if by is not None else "left_by", side="left")
    _checks.require_columns(right, r_by, argument="by" if by is not None else "right_by", side="right")

    # right output columns and their names, pandas style
    same_name_keys = {rk for lk, rk in zip(l_by, r_by, strict=False) if lk == rk}
    right_cols = [c for c in right.columns if c not in same_name_keys]
    left_names = {c: c for c in left.columns}
    right_names: dict[str, str] = {}
    for col in right_cols:
        if col == r_on and r_on == l_on:
            right_names[col] = col + (suffixes[1] or "_right")
        elif col in left_names:
            if not suffixes[0] and not suffixes[1]:
                raise InvalidArgumentError(
                    argument="suffixes", expected="at least one non-empty suffix",
                    found=f"{tuple(suffixes)!r} while both sides have a column {col!r}",
                )
            left_names[col] = col + suffixes[0]
            right_names[col] = col + suffixes[1]
        else:
            right_names[col] = col
    lookup = AsofLookup(
        right=right, on=r_on, by=r_by, left_by=l_by, features=right_cols, tolerance=tolerance,
        direction=direction, allow_exact_matches=allow_exact_matches, tie_breaker=tie_breaker,
    )
    return _join_group(
        left, l_on, [(lookup, right_names)], left_names, by_argument="by" if by is not None else "left_by",
        hot_key_share=hot_key_share,
    )


def asof_join_many(
    left: DataFrame, lookups: Sequence[AsofLookup], *, on: str, hot_key_share: float | None = HOT_KEY_SHARE
) -> DataFrame:
    """Join several right tables onto one spine at its time column ``on``.

    Lookups that use the same spine key columns are swept together in ONE pass (one shuffle of
    the spine for all of them), so a training set over 5-20 feature groups keyed by the same
    entity pays for the spine once. Lookups on other keys take one more pass per key set, except
    over small laid-out tables (strategy ``whole``): those passes run together first, in one
    Python round trip without a key shuffle, each task reading the tables whole.
    Output: the spine's columns, then each lookup's features (``prefix + name``) and its time.
    """
    from pyspark.sql import functions as F

    groups = _many_groups(left, lookups, on=on)
    order = [*left.columns, *[name for group in groups for _, names in group for name in names.values()]]
    small, held = [], 0  # the passes read whole together, up to FUSED_ROWS rows held per worker
    for g in groups:
        rows = whole_rows([lk.source for lk, _ in g])
        if forced_strategy() == "whole" or (rows is not None and held + rows <= _asof_layout.FUSED_ROWS):
            small, held = [*small, g], held + (rows or 0)
    planned = [(g, _join_group(left, on, g, {c: c for c in left.columns}, by_argument="left_by",
                               hot_key_share=hot_key_share)) for g in small]
    whole = [(g, p) for g, p in planned if p.plan.strategy == "whole"]
    result = left
    if whole:  # every pass over small laid-out tables in one task pass, the spine spread over the cores once
        result = _asof_layout.whole_join(left.hint("rebalance"), [(list(g[0][0].left_by or []), on, p.rights) for g, p in whole])
    for group in [g for g in groups if not any(g is w for w, _ in whole)]:
        result = execute(_join_group(
            result, on, group, {c: c for c in result.columns}, by_argument="left_by", hot_key_share=hot_key_share,
            spine=left,
        ))
    return result.select(*[F.col(_q(c)) for c in order]) if result.columns != order else result


def explain_asof_many(
    left: DataFrame, lookups: Sequence[AsofLookup], *, on: str, hot_key_share: float | None = HOT_KEY_SHARE
) -> tuple[AsofPlan, ...]:
    """How :func:`asof_join_many` would run: one :class:`AsofPlan` per pass (per spine key set)."""
    plans = []
    for group in _many_groups(left, lookups, on=on):
        plans.append(_join_group(left, on, group, {c: c for c in left.columns}, by_argument="left_by",
                                 hot_key_share=hot_key_share, explain=True).plan)
    return tuple(plans)


def _many_groups(
    left: DataFrame, lookups: Sequence[AsofLookup], *, on: str
) -> list[list[tuple[AsofLookup, dict[str, str]]]]:
    """Validate the lookups and group them by spine key columns (one pass per group)."""
    _checks.require_dataframe(left, argument="left")
    if not isinstance(lookups, (list, tuple)) or not lookups or not all(isinstance(x, AsofLookup) for x in lookups):
        raise InvalidArgumentError(argument="lookups", expected="a non-empty list of AsofLookup", found=repr(lookups))
    _checks.require_columns(left, [on], argument="on", side="left")
    groups: dict[tuple[str, ...], list[tuple[AsofLookup, dict[str, str]]]] = {}
    taken = set(left.columns)
    for i, lookup in enumerate(lookups):
        _checks.require_dataframe(lookup.right, argument=f"lookups[{i}].right")
        r_by = _checks.as_list(lookup.by, argument=f"lookups[{i}].by")
        l_by = _checks.as_list(lookup.left_by, argument=f"lookups[{i}].left_by") if lookup.left_by is not None else r_by
        _checks.require_columns(left, l_by, argument=f"lookups[{i}].left_by", side="left")
        _checks.require_columns(lookup.right, [lookup.on], argument=f"lookups[{i}].on", side="right")
        _checks.require_columns(lookup.right, r_by, argument=f"lookups[{i}].by", side="right")
        features = list(lookup.features) if lookup.features is not None else [
            c for c in lookup.right.columns if c not in r_by and c != lookup.on
        ]
        _checks.require_columns(lookup.right, features, argument=f"lookups[{i}].features", side="right")
        names = {c: lookup.prefix + c for c in features if c != lookup.on}
        time_name = lookup.time_alias or (lookup.prefix + lookup.on if lookup.prefix else lookup.on)
        if time_name in taken or time_name in names.values():
            time_name = time_name + "_right" if not lookup.time_alias else time_name
        names[lookup.on] = time_name
        for out in names.values():
            if out in taken:
                raise InvalidArgumentError(
                    argument=f"lookups[{i}].prefix", expected="output column names not already in the result",
                    found=f"{out!r} clashes with an existing column", hint="Give the lookup a prefix.",
                )
            taken.add(out)
        fixed = AsofLookup(
            right=lookup.right, on=lookup.on, by=r_by, left_by=l_by, features=features, tolerance=lookup.tolerance,
            direction=lookup.direction, allow_exact_matches=lookup.allow_exact_matches,
            tie_breaker=lookup.tie_breaker, prefix=lookup.prefix, time_alias=lookup.time_alias, source=lookup.source,
        )
        groups.setdefault(tuple(l_by), []).append((fixed, names))
    return list(groups.values())


def _join_group(
    left: DataFrame,
    left_on: str,
    group: Sequence[tuple[AsofLookup, dict[str, str]]],
    left_names: dict[str, str],
    *,
    by_argument: str,
    hot_key_share: float | None,
    spine: DataFrame | None = None,
    explain: bool = False,
) -> Pass:
    """Validate one group of lookups sharing the spine keys and plan their one pass. ``spine``:
    the original spine when ``left`` is an earlier pass's result (sizes and hot keys are judged
    on it, so planning never runs the earlier passes); ``explain``: estimate what the run skips."""
    from pyspark.sql import functions as F

    for col in [*left.columns, *[c for lookup, _ in group for c in lookup.right.columns]]:
        if col.startswith("__ff_"):
            raise InvalidArgumentError(
                argument="columns", expected="column names not starting with the reserved prefix '__ff_'", found=repr(col)
            )
    l_by = _checks.as_list(group[0][0].left_by, argument=by_argument)
    rights: list[RightSide] = []
    kind = None
    for lookup, _names in group:
        r_by = _checks.as_list(lookup.by, argument="right_by")
        _checks.check_key_types(left, l_by, lookup.right, r_by, argument=by_argument)
        kind = _checks.check_time_columns(left, left_on, lookup.right, lookup.on, argument="on")
        if lookup.direction not in DIRECTIONS:
            raise InvalidArgumentError(argument="direction", expected=f"one of {list(DIRECTIONS)}", found=repr(lookup.direction))
        if not isinstance(lookup.allow_exact_matches, bool):
            raise InvalidArgumentError(argument="allow_exact_matches", expected="True or False", found=repr(lookup.allow_exact_matches))
        _checks.check_window(lookup.tolerance, kind, argument="tolerance")
        ties = _checks.as_list(lookup.tie_breaker, argument="tie_breaker")
        _checks.require_columns(lookup.right, ties, argument="tie_breaker", side="right")
    if hot_key_share is not None and (
        isinstance(hot_key_share, bool) or not isinstance(hot_key_share, (int, float)) or not 0 <= hot_key_share < 1
    ):
        raise InvalidArgumentError(argument="hot_key_share", expected="None or a share in [0, 1)", found=repr(hot_key_share))
    assert kind is not None
    kinds = {_checks.time_kind(left, left_on, argument="on")}
    kinds |= {_checks.time_kind(lookup.right, lookup.on, argument="on") for lookup, _ in group}
    as_double = "fractional" in kinds  # integers compared with floats: compare as doubles

    def to_number(frame: DataFrame, column: str) -> Any:
        value = _checks.time_as_number(F.col(_q(column)), _checks.time_kind(frame, column, argument="on"))
        return value.cast("double") if as_double else value

    left_frame = left.select(
        *[F.col(_q(c)).alias(KEY.format(i)) for i, c in enumerate(l_by)],
        to_number(left, left_on).alias(TIME),
        *[F.col(_q(c)).alias(left_names[c]) for c in left.columns],
    )
    for lookup, names in group:
        r_by = _checks.as_list(lookup.by, argument="right_by")
        ties = _checks.as_list(lookup.tie_breaker, argument="tie_breaker")
        tie_cols = [f"__ff_tie{j}" for j in range(len(ties))]
        frame = lookup.right.select(
            *[F.col(_q(c)).alias(KEY.format(i)) for i, c in enumerate(r_by)],
            to_number(lookup.right, lookup.on).alias(TIME),
            *[F.col(_q(c)).alias(names[c]) for c in names],
            *[F.col(_q(c)).alias(t) for c, t in zip(ties, tie_cols, strict=True)],
        )
        tolerance = _checks.window_as_number(lookup.tolerance, kind)
        pairs = [*[(c, KEY.format(i)) for i, c in enumerate(r_by)], (lookup.on, TIME), *names.items(),
                 *zip(ties, tie_cols, strict=True)]
        rights.append(
            RightSide(
                frame=frame, payload=list(names.values()), tie_breaker=tie_cols, direction=lookup.direction,
                allow_exact_matches=lookup.allow_exact_matches, tolerance=tolerance, source=lookup.source,
                read_columns=tuple(pairs) if lookup.source is not None else (),
            )
        )
    spine = left if spine is None else spine
    spine_keys = spine.select(
        *[F.col(_q(c)).alias(KEY.format(i)) for i, c in enumerate(l_by)], to_number(spine, left_on).alias(TIME)
    )
    choice = choose(left_frame, spine, spine_keys, [lookup.right for lookup, _ in group], l_by, rights,
                    hot_key_share=hot_key_share, time_kinds=kinds, explain=explain)
    return Pass(left_frame, [left_names[c] for c in left.columns], len(l_by), rights, choice.plan, choice.hot_slices)


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
