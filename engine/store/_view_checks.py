"""The checks of a feature view definition before it is registered: names, lookups, lookbacks,
on-demand functions, exclusions, unique output columns."""

from __future__ import annotations

import inspect
from datetime import timedelta
from typing import TYPE_CHECKING

from engine.errors import ColumnNotFoundError, InvalidArgumentError
from engine.store.lookups import FeatureLookup, OnDemandFeature
from engine.store.names import check_name

if TYPE_CHECKING:
    from engine.store.feature_view import FeatureView

__all__ = ["validate_view"]


def validate_view(view: FeatureView) -> None:
    """Check a view before registering it: groups, features, keys, names, lookbacks, functions."""
    check_name(view.name, argument="name")
    if not isinstance(view.spine_time, str) or not view.spine_time:
        raise InvalidArgumentError(argument="spine_time", expected="a column name", found=repr(view.spine_time))
    if not view.lookups and not view.on_demand:
        raise InvalidArgumentError(argument="lookups", expected="at least one lookup or on-demand feature", found="none")
    for i, lookup in enumerate(view.lookups):
        if not isinstance(lookup, FeatureLookup):
            raise InvalidArgumentError(argument=f"lookups[{i}]", expected="a FeatureLookup", found=repr(lookup))
        if lookup.lookback is not None and (not isinstance(lookup.lookback, timedelta) or lookup.lookback <= timedelta(0)):
            raise InvalidArgumentError(
                argument=f"lookups[{i}].lookback", expected="a timedelta > 0 (or None for any age)", found=repr(lookup.lookback)
            )
        if lookup.prefix:
            check_name(lookup.prefix.rstrip("_") or "_", argument=f"lookups[{i}].prefix")
    resolved = view.resolved()  # unknown groups / features / keys raise here
    names = [r.prefix + f for r in resolved for f in r.features] + [r.time_column for r in resolved]
    for od in view.on_demand:
        if not isinstance(od, OnDemandFeature):
            raise InvalidArgumentError(argument="on_demand", expected="OnDemandFeature items", found=repr(od))
        check_name(od.name, argument="on_demand.name")
        fn = od.resolve()
        if not isinstance(od.function, str) and fn is not od.function:
            raise InvalidArgumentError(
                argument=f"on_demand[{od.name}].function", expected="an importable top-level function",
                found=od.reference, hint="It must be reachable as module:function to be stored.",
            )
        try:
            inspect.signature(fn).bind(*od.inputs)
        except TypeError:
            raise InvalidArgumentError(
                argument=f"on_demand[{od.name}].inputs", expected=f"arguments accepted by {od.reference}",
                found=list(od.inputs),
            ) from None
        names.append(od.name)
    if isinstance(view.exclude, str) or not all(isinstance(c, str) for c in view.exclude):
        raise InvalidArgumentError(argument="exclude", expected="a list of feature names", found=repr(view.exclude))
    features = [n for n in names if n not in {r.time_column for r in resolved}]
    for column in view.exclude:
        if column not in features:
            raise ColumnNotFoundError(argument="exclude", column=column, side="view's feature", available=features)
    if features and set(features) <= set(view.exclude):
        raise InvalidArgumentError(argument="exclude", expected="at least one feature left as a model input",
                                   found=f"every feature excluded: {list(view.exclude)}")
    duplicates = sorted({n for n in names if names.count(n) > 1} | (set(names) & {view.spine_time, *view.labels}))
    if duplicates:
        raise InvalidArgumentError(
            argument="lookups.prefix", expected="unique output column names", found=f"duplicates {duplicates}",
            hint="Give lookups distinct prefixes.",
        )
