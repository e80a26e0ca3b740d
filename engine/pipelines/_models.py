"""Model families: which tasks and parameters each accepts, and the scikit-learn estimators.

Two kinds of family:

* ``sklearn_*`` run on one machine. The training and validation sets are collected to the driver
  once, broadcast once, and each hyperopt trial (a Spark task under ``SparkTrials``) fits one
  scikit-learn model on an executor: :func:`sklearn_trial`.
* ``spark_*`` run distributed (``engine.pipelines._spark_models``). A Spark ML fit is itself a set
  of Spark jobs, which cannot be launched from inside an executor task, so trials run one after
  another on the driver (hyperopt ``Trials()``), each a distributed fit.

Families by task (``FAMILY_TASKS``): ``*_gbt`` gradient boosting (classifier or regressor;
Spark's GBT is binary only), ``*_logreg`` logistic regression (binary, multinomial), ``*_linear``
linear regression (scikit-learn ``Ridge``, Spark ``LinearRegression``).

STRING features are encoded inside the model, so a scored row needs no extra step: ordinal codes
(unknown and missing: NaN, the trees' own missing-value branch) for gradient boosting, one-hot
(unknown ignored) for the linear models. Numeric features are float64.

Parameter names in configs are the estimator's own constructor names for scikit-learn
(``learning_rate``, ``C``) and the snake_case form of the Spark ML param for Spark
(``max_depth`` -> ``maxDepth``, ``reg_param`` -> ``regParam``).
"""

from __future__ import annotations

import inspect
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from engine.pipelines._trials import FITTED

__all__ = [
    "FAMILIES",
    "FAMILY_TASKS",
    "SKLEARN_FAMILIES",
    "SPARK_FAMILIES",
    "accepted_params",
    "build_sklearn",
    "sklearn_trial",
]

# a trial's fitted model comes back to the driver with its result (the key FITTED) when its pickle
# is at most this size, so the best one is kept instead of refitted; a larger one is refitted
MAX_FITTED_BYTES = 64 * 2**20
SKLEARN_FAMILIES = ("sklearn_gbt", "sklearn_logreg", "sklearn_linear")
SPARK_FAMILIES = ("spark_gbt", "spark_logreg", "spark_linear")
FAMILIES = SKLEARN_FAMILIES + SPARK_FAMILIES
FAMILY_TASKS: dict[str, tuple[str, ...]] = {
    "sklearn_gbt": ("binary", "multiclass", "regression"),
    "sklearn_logreg": ("binary", "multiclass"),
    "sklearn_linear": ("regression",),
    "spark_gbt": ("binary", "regression"),
    "spark_logreg": ("binary", "multiclass"),
    "spark_linear": ("regression",),
}

# Set by the engine, not by a search space: the seed comes from the config, logging from the caller,
# the categorical columns from the feature types.
_SKLEARN_RESERVED = frozenset({"random_state", "verbose", "categorical_features"})
_TREE_PARAMS = (
    "maxDepth", "maxBins", "minInstancesPerNode", "minInfoGain", "minWeightFractionPerNode",
    "maxIter", "stepSize", "subsamplingRate", "featureSubsetStrategy", "validationTol",
    "maxMemoryInMB", "cacheNodeIds", "checkpointInterval",
)
_LINEAR_PARAMS = ("maxIter", "regParam", "elasticNetParam", "tol", "fitIntercept", "standardization",
                  "aggregationDepth", "maxBlockSizeInMB")
# The Spark ML params a search space may set (everything else -- column names, seed, weights --
# is wired by the engine). tests/spark/test_training.py checks each one against the estimator.
SPARK_TUNABLE: dict[tuple[str, str], tuple[str, ...]] = {
    ("spark_gbt", "binary"): _TREE_PARAMS,
    ("spark_gbt", "regression"): (*_TREE_PARAMS, "lossType"),
    ("spark_logreg", "binary"): _LINEAR_PARAMS,
    ("spark_logreg", "multiclass"): _LINEAR_PARAMS,
    ("spark_linear", "regression"): (*_LINEAR_PARAMS, "loss", "epsilon", "solver"),
}  # fmt: skip


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def _sklearn_class(family: str, task: str) -> type:
    if family == "sklearn_gbt":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        return HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    if family == "sklearn_linear":
        from sklearn.linear_model import Ridge

        return Ridge
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression


def accepted_params(family: str, task: str = "binary") -> dict[str, str]:
    """Config parameter name -> the estimator's parameter name, for one family and task."""
    if family in SKLEARN_FAMILIES:
        names = inspect.signature(_sklearn_class(family, task)).parameters
        return {n: n for n in names if n not in _SKLEARN_RESERVED}
    tunable = SPARK_TUNABLE.get((family, task), SPARK_TUNABLE.get((family, FAMILY_TASKS[family][0]), ()))
    return {_snake(n): n for n in tunable}


# ---------------------------------------------------------------------------------------------
# scikit-learn families: one trial = one fit inside one Spark task


def build_sklearn(family: str, params: Mapping[str, Any], *, seed: int, task: str = "binary",
                  categorical: Sequence[str] = (), numeric: Sequence[str] | None = None) -> Any:
    """The unfitted estimator. Numeric-only: gradient boosting as is (it handles NaN itself), the
    linear models behind median imputation and standard scaling. With ``categorical`` (STRING)
    columns, a ColumnTransformer encodes them inside the model (see the module docstring)."""
    import numpy as np
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    cls = _sklearn_class(family, task)
    categorical = list(categorical)
    if family == "sklearn_gbt":
        if not categorical:
            return cls(random_state=seed, **params)
        from sklearn.compose import ColumnTransformer
        from sklearn.preprocessing import OrdinalEncoder

        numeric = list(numeric or [])
        codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan)
        encode = ColumnTransformer([("num", "passthrough", numeric), ("cat", codes, categorical)])
        cats = list(range(len(numeric), len(numeric) + len(categorical)))
        return Pipeline([("encode", encode), ("model", cls(random_state=seed, categorical_features=cats, **params))])
    defaults = {"max_iter": 1000} if family == "sklearn_logreg" else {}
    model = cls(random_state=seed, **{**defaults, **params})
    if not categorical:
        return Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler()), ("clf", model)])
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    numeric_steps = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    encode = ColumnTransformer([("num", numeric_steps, list(numeric or [])),
                                ("cat", OneHotEncoder(handle_unknown="ignore"), categorical)])
    return Pipeline([("encode", encode), ("clf", model)])


def sklearn_output(model: Any, x: Any, task: str) -> Any:
    """What the metrics take: class probabilities (classification) or values (regression)."""
    return model.predict(x) if task == "regression" else model.predict_proba(x)


def sklearn_trial(
    params: dict[str, Any], *, data: Any, family: str, fixed: Mapping[str, Any], seed: int, metric: str,
    threads: int, task: str = "binary", classes: Sequence[Any] | None = None, categorical: Sequence[str] = (),
    numeric: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Hyperopt objective run on an executor. ``data`` is a Broadcast of
    ``(x_train, y_train, x_validation, y_validation)``. A failing fit becomes a failed trial
    (with its error) rather than an exception, so the search goes on and the failure is logged."""
    from hyperopt import STATUS_FAIL, STATUS_OK

    from engine.pipelines._metrics import task_metrics

    start = time.time()
    try:
        from threadpoolctl import threadpool_limits

        x_train, y_train, x_val, y_val = data.value
        with threadpool_limits(limits=threads):
            model = build_sklearn(family, {**fixed, **params}, seed=seed, task=task, categorical=categorical,
                                  numeric=numeric)
            model.fit(x_train, y_train)
            output = sklearn_output(model, x_val, task)
        metrics = task_metrics(task, y_val, output, classes)
    except Exception as err:
        return {
            "status": STATUS_FAIL, "params": params, "error": f"{type(err).__name__}: {err}"[:2000],
            "start_time": start, "end_time": time.time(),
        }
    return {**trial_ok(STATUS_OK, params, metrics, metric, start), FITTED: fitted_model(model)}


def fitted_model(model: Any) -> tuple[str, bytes] | None:
    """A trial's fitted model as it travels to the driver: (scikit-learn's version, the pickle),
    or None when the pickle is over :data:`MAX_FITTED_BYTES` (the driver then refits the best)."""
    import pickle

    import sklearn

    try:
        blob = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # not picklable here: the driver refits it
        return None
    return (sklearn.__version__, blob) if len(blob) <= MAX_FITTED_BYTES else None


def unpickled_model(fitted: Any) -> Any | None:
    """The model of :func:`fitted_model`'s result, or None (none came back, or it was pickled by
    another scikit-learn version than the driver's: refit there rather than load it across versions)."""
    import pickle

    import sklearn

    if not isinstance(fitted, tuple) or len(fitted) != 2 or fitted[0] != sklearn.__version__:
        return None
    try:
        return pickle.loads(fitted[1])  # our own executors' pickle of the trial's model
    except Exception:  # unreadable here: the driver refits it
        return None


def trial_ok(status: str, params: dict[str, Any], metrics: dict[str, float], metric: str, start: float) -> dict[str, Any]:
    """A successful trial's hyperopt result; the loss is the metric, negated when higher is better."""
    from engine.pipelines._metrics import GREATER_IS_BETTER

    loss = -metrics[metric] if GREATER_IS_BETTER[metric] else metrics[metric]
    return {
        "status": status, "loss": loss, "params": params, "metrics": metrics,
        "start_time": start, "end_time": time.time(),
    }
