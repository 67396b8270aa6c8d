"""Model evaluation stores of a project on a DSS node: the latest evaluation of a model version.

Paths and shapes as dataikuapi reads them (``dss/evaluationstore.py``): the list
``GET /projects/{key}/evaluationstores/{id}/evaluations/`` (items with ``ref.evaluationId``),
the full info ``GET .../evaluations/{eid}`` with ``metrics`` and ``evaluation.modelRef.fullId``
and ``evaluation.created``. A version is matched by its snippet's ``fullModelId``.
"""

from __future__ import annotations

from typing import Any

from mlcd.dss.node import DSSNode
from mlcd.dss.nodebase import q


def latest_metrics(node: DSSNode, key: str, store: str, full_model_id: str) -> dict[str, Any] | None:
    """The metrics of the newest evaluation of ``full_model_id`` in ``store`` (None when it has none)."""
    base = f"projects/{q(key)}/evaluationstores/{q(store)}/evaluations"
    items = node._list(node._get(f"{base}/", f"list evaluations of store {store}"), "evaluations")
    newest: tuple[int, dict[str, Any]] | None = None
    for item in items:
        eid = (item.get("ref") or {}).get("evaluationId")
        if not eid:
            continue
        full = node._get(f"{base}/{q(str(eid))}", f"read evaluation {eid} of store {store}")
        evaluation = full.get("evaluation") if isinstance(full, dict) else None
        if (
            not isinstance(evaluation, dict)
            or (evaluation.get("modelRef") or {}).get("fullId") != full_model_id
        ):
            continue
        created = int(evaluation.get("created") or 0)
        metrics = full.get("metrics")
        if isinstance(metrics, dict) and (newest is None or created >= newest[0]):
            newest = (created, metrics)
    return newest[1] if newest else None
