"""A copy of the sample project with a saved model and a retrain scenario, for continuous-training tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from support.pipeline_env import SAMPLE_PROJECT

SAVED_MODEL = "churn_model"
RETRAIN = "RETRAIN"


def retrain_project(
    dest: Path, *, auc: float = 0.80, steps_after: list[dict[str, Any]] | None = None
) -> Path:
    """Copy SAMPLE to ``dest/SAMPLE`` with saved model ``churn_model`` (version initial) and RETRAIN.

    RETRAIN trains ``churn_model``, then runs ``steps_after``.
    """
    project = dest / SAMPLE_PROJECT.name
    shutil.copytree(SAMPLE_PROJECT, project)
    (project / "savedmodels").mkdir()
    champion = {"id": "initial", "snippet": {"auc": auc, "f1": 0.7, "logLoss": 0.45}}
    (project / "savedmodels" / f"{SAVED_MODEL}.json").write_text(
        json.dumps({"name": "Churn model", "versions": [champion], "activeVersion": "initial"})
    )
    steps = [{"id": "train", "name": "Train churn model", "type": "train_model", "savedModel": SAVED_MODEL}]
    scenario = {"id": RETRAIN, "name": "Retrain the churn model", "markedAsTest": False, "active": False,
                "steps": [*steps, *(steps_after or [])]}  # fmt: skip
    (project / "scenarios" / f"{RETRAIN}.json").write_text(json.dumps(scenario))
    return project
