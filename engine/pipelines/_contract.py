"""What a logged model promises its scorer: the ``feature_factory`` entry of its MLmodel metadata.

Written by :func:`engine.pipelines.training.train` and :func:`engine.pipelines.models.log_model`,
read by :func:`engine.pipelines.inference.score_batch`::

    feature_factory:
      flavor: sklearn | spark | pyfunc     # how score_batch runs it
      task: binary | multiclass | regression
      features: [...]                      # the model inputs, in order
      input_types: {feature: double | string}   # numbers arrive as float64, strings as str / None
      label: ...
      classes: [...]                       # classification: class values, in probability order
      spark_output: {prediction: col, probability: col}   # spark flavour: the model's output columns

Beside it the metadata holds ``feature_view`` (store root, name, version), ``training_dataset``
(version, path, source Delta versions) and, for the built-in pipeline, the family and run id.
Models logged before this contract (binary, 0/1, numeric inputs) are read as such.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FLAVORS", "ModelContract"]

FLAVORS = ("sklearn", "spark", "pyfunc")


@dataclass(frozen=True)
class ModelContract:
    flavor: str
    task: str
    features: tuple[str, ...]
    input_types: dict[str, str]
    label: str | None = None
    classes: list[Any] | None = None
    spark_prediction: str | None = None  # spark flavour: class index (classification) or value column
    spark_probability: str | None = None  # spark flavour, classification: the probability vector column
    extra: dict[str, Any] = field(default_factory=dict)  # family, training run id, output description...

    @property
    def is_classifier(self) -> bool:
        return self.task != "regression"

    def to_metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            **self.extra, "flavor": self.flavor, "task": self.task, "features": list(self.features),
            "input_types": dict(self.input_types), "label": self.label, "classes": self.classes,
        }
        if self.is_classifier and self.classes:
            out["positive_class"] = self.classes[-1] if self.task == "binary" else None
        if self.flavor == "spark":
            out["spark_output"] = {"prediction": self.spark_prediction, "probability": self.spark_probability}
        return out

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> ModelContract:
        ff = dict(metadata.get("feature_factory") or {})
        features = tuple(ff.get("features") or metadata.get("features") or ())
        if "task" not in ff:  # logged before the contract: a binary 0/1 classifier on numeric inputs
            spark = str(ff.get("family", "")).startswith("spark_")
            return cls(flavor="spark" if spark else "sklearn", task="binary", features=features,
                       input_types=dict.fromkeys(features, "double"), label=ff.get("label"), classes=[0, 1],
                       spark_prediction=None, spark_probability="prediction" if spark else None, extra=ff)
        output = ff.get("spark_output") or {}
        known = {"flavor", "task", "features", "input_types", "label", "classes", "spark_output", "positive_class"}
        return cls(
            flavor=ff["flavor"], task=ff["task"], features=features, input_types=dict(ff.get("input_types") or {}),
            label=ff.get("label"), classes=ff.get("classes"), spark_prediction=output.get("prediction"),
            spark_probability=output.get("probability"), extra={k: v for k, v in ff.items() if k not in known},
        )
