"""Is this URL a DSS node? Asked once, before a command sends anything else to a node.

A URL pointing at some other web server (a proxy's landing page, an artifact
repository, a typo'd port) would otherwise look like an empty DSS: "project not
deployed yet", a plan, a bundle POSTed into the void. DSS answers
``GET /public/api/instance-info`` with a JSON object holding ``nodeType``
(``dataikuapi`` ``get_instance_info``), and its errors are JSON objects with an
``errorType``; an answer of neither shape is not DSS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlcd.dss.errors import DSSError
from mlcd.errors import NodeError

if TYPE_CHECKING:
    from mlcd.dss.node import DSSNode

OPERATION = "check the node is DSS"


class NotADSSNode(NodeError):
    """The URL answers, but not as a DSS node (exit 6)."""

    category = "not_dss"


def _refuse(node: DSSNode, answer: str) -> NotADSSNode:
    where = "design.url" if node.name == "design" else f"the url of environment {node.name}"
    return NotADSSNode(
        f"{node.url} is not a DSS node: GET /public/api/instance-info answered {answer}",
        f"set {where} in mlcd.yaml to the DSS node's base URL, e.g. https://dss.example.com:11200",
    )


def _describe(content_type: str, payload: Any) -> str | None:
    """Why a 2xx answer is not DSS's instance-info, or None when it is."""
    if "json" not in content_type.lower():
        return f"{content_type or 'no content type'}, not JSON"
    if not isinstance(payload, dict) or not isinstance(payload.get("nodeType"), str):
        return "JSON without a nodeType"
    return None


def ensure_dss(node: DSSNode) -> dict[str, Any]:
    """Return the node's instance info; :class:`NotADSSNode` when the URL is not a DSS node.

    One attempt, no retries: a DSS error (JSON with an ``errorType``, e.g. a refused
    key), a transient fault or an unreachable node is left for the command's own
    calls to retry and report as they always do; only an answer that is not DSS's
    stops the command here.
    """
    try:
        resp = node.http.send("GET", "instance-info", operation=OPERATION)
    except DSSError as exc:
        if exc.status is not None and exc.status < 500 and exc.status != 429 and not exc.error_type:
            raise _refuse(node, f"HTTP {exc.status} without a DSS error") from None
        return {}
    try:
        try:
            payload = resp.json()
        except ValueError:
            payload = None
        problem = _describe(resp.headers.get("Content-Type", ""), payload)
    finally:
        resp.close()
    if problem:
        raise _refuse(node, f"HTTP {resp.status_code}, {problem}")
    return dict(payload)
