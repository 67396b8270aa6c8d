"""Datasets of a project on a DSS node: the last computed values of their metrics.

``GET /projects/{key}/datasets/{name}/metrics/last/NP`` (dataikuapi ``dss/dataset.py``
``get_last_metric_values``; the answer is ``ComputedMetrics``' raw shape, read by
:mod:`mlcd.training.drift`).
"""

from __future__ import annotations

from typing import Any

from mlcd.dss.node import DSSNode
from mlcd.dss.nodebase import q


def last_metric_values(node: DSSNode, key: str, dataset: str, partition: str = "NP") -> Any:
    """The raw last metric values of ``dataset`` (``partition`` NP: not partitioned, or the whole dataset)."""
    op = f"read the last metrics of dataset {dataset} of project {key}"
    return node._get(f"projects/{q(key)}/datasets/{q(dataset)}/metrics/last/{q(partition)}", op)
