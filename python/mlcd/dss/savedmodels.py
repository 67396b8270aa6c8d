"""Saved models of a project on a DSS node: versions, their metrics, the active version.

The paths and shapes are those dataikuapi uses (``dataikuapi/dss/savedmodel.py``,
``ml.py``): ``GET /projects/{key}/savedmodels/`` lists the saved models;
``GET .../savedmodels/{id}/versions`` lists versions, each with at least ``id`` and
``active``; a version's performance metrics are the numeric entries of
``GET .../versions/{v}/snippet`` (what ``get_performance_metrics()`` returns: the
snippet without its bookkeeping keys); ``POST .../versions/{v}/actions/setActive``
activates a version. Activating is sent once; after a transient fault the version
list tells whether it took effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlcd.dss.node import DSSNode
from mlcd.dss.nodebase import q
from mlcd.training.champion import numeric_metrics

# snippet keys that are bookkeeping, not performance (dataikuapi's get_performance_metrics drops them)
NOT_METRICS = frozenset(
    {"gridsearchData", "trainDate", "topImportance", "backendType", "userMeta", "sessionDate",
     "trainInfo", "fullModelId", "gridLength", "algorithm", "sessionId"}
)  # fmt: skip


@dataclass(frozen=True)
class Version:
    """One version of a saved model as the version list shows it."""

    id: str
    active: bool
    train_date: Any = None


class SavedModels:
    """The saved models of project ``key`` on ``node``."""

    def __init__(self, node: DSSNode, key: str) -> None:
        self.node = node
        self.key = key

    def _base(self, sm: str) -> str:
        return f"projects/{q(self.key)}/savedmodels/{q(sm)}"

    def ids(self) -> list[str]:
        """Ids of every saved model of the project."""
        op = f"list saved models of project {self.key}"
        items = self.node._list(self.node._get(f"projects/{q(self.key)}/savedmodels/", op), "savedModels")
        return sorted(str(item.get("id")) for item in items if item.get("id"))

    def versions(self, sm: str) -> list[Version]:
        """The versions of saved model ``sm``, in the node's order."""
        op = f"list versions of saved model {sm} of project {self.key}"
        items = self.node._list(self.node._get(f"{self._base(sm)}/versions", op), "versions")
        return [
            Version(str(item["id"]), item.get("active") is True, item.get("trainDate"))
            for item in items
            if item.get("id") is not None
        ]

    def active(self, sm: str) -> str | None:
        """The id of the active version of ``sm`` (None when none is active)."""
        return next((v.id for v in self.versions(sm) if v.active), None)

    def snippet(self, sm: str, version: str) -> dict[str, Any]:
        """The version's snippet (its performance metrics at the top level, and ``fullModelId``)."""
        op = f"read metrics of version {version} of saved model {sm}"
        snippet = self.node._get(f"{self._base(sm)}/versions/{q(version)}/snippet", op)
        return snippet if isinstance(snippet, dict) else {}

    def metrics(self, sm: str, version: str, evaluation_store: str | None = None) -> dict[str, float]:
        """The finite numeric performance metrics of a version, by DSS's names.

        With ``evaluation_store``: those of the version's newest evaluation in that store
        (empty when the store has none for it).
        """
        snippet = self.snippet(sm, version)
        if evaluation_store is None:
            return numeric_metrics({k: v for k, v in snippet.items() if k not in NOT_METRICS})
        from mlcd.dss.evaluations import latest_metrics

        found = latest_metrics(self.node, self.key, evaluation_store, str(snippet.get("fullModelId")))
        return numeric_metrics(found or {})

    def set_active(self, sm: str, version: str) -> None:
        """Activate ``version`` of ``sm`` (sent once; after a transient fault, the version list decides)."""
        op = f"activate version {version} of saved model {sm}"

        def send() -> bool:
            path = f"{self._base(sm)}/versions/{q(version)}/actions/setActive"
            self.node._json(self.node.http.send("POST", path, operation=op), op)
            return True

        def check() -> bool | None:
            return True if self.active(sm) == version else None

        self.node._once_then_check(op, send, check)
