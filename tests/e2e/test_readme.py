"""The README's code blocks run as written: the feature repository it shows (its YAML and Python
files, written where their first-line comment says) and its Python blocks, in order, in one
namespace, from a scratch working directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

README = Path(__file__).resolve().parents[2] / "README.md"
FILE = re.compile(r"^# (\S+\.(?:py|yaml))\s*$")


def blocks() -> list[tuple[str, str]]:
    return re.findall(r"```(python|yaml)\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_the_whole_flow() -> None:
    text = README.read_text()
    for needle in ("log_model", "load_repository", "plan(", "apply(", "backfill(", "build_training_data(", "train(", "score(",
                   "monitor(", "lineage(", "jobs.plan", "jobs.apply", "jobs.feature_backfill", "jobs.score_batch"):
        assert needle in text, needle


CHECKS = """
assert trained.registration.promoted is True
assert logged.registration.promoted is True  # the first version of big_order_hgb takes the alias
assert predictions.count() == to_score.count() == 600  # every spine row scored once
assert scored["rows"] > 10 and Path(drift["report"]).is_file()
assert Path(drift["report"]).resolve().is_relative_to(Path("shop/store").resolve())
assert Path("shop/store/_mlflow/mlflow.db").is_file()
assert sorted(p.name for p in Path(".").iterdir()) == ["lib_store", "readme_flow.py", "shop"], list(Path(".").iterdir())
print("README OK")
"""


def test_readme_code_runs_as_written(tmp_path: Path) -> None:
    """In its own process (the README builds its own session, as a user would)."""
    flow = ["from pathlib import Path"]
    for kind, code in blocks():
        target = FILE.match(code.splitlines()[0])
        if target:  # a file of the repository
            path = tmp_path / target[1]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(code)
        elif kind == "python":
            flow.append(code)
    assert len(flow) >= 3
    (tmp_path / "readme_flow.py").write_text("\n".join([*flow, CHECKS]))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "FF_", "PYSPARK_GATEWAY"))}
    env["PYTHONPATH"] = str(README.parent)
    done = subprocess.run([sys.executable, "readme_flow.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0 and "README OK" in done.stdout, done.stderr[-5000:]
