"""`ProjectDeployer`: the Project Deployer calls mlcd makes, through one node's HTTP session.

Paths, bodies and answers follow dataikuapi's ``DSSProjectDeployer`` and
``DSSProjectDeployerDeployment`` (docs/stand-in.md lists each with its source).
The deployer lives on a design node or on a separate deployer node; either way
it is reached with its own API key, as any :class:`~mlcd.dss.node.DSSNode`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlcd.dss.errors import DSSNotFound
from mlcd.dss.futures import wait_for_future
from mlcd.dss.node import DSSNode
from mlcd.dss.nodebase import q
from mlcd.dss.transfer import MultipartFile

BASE = "project-deployer"


class ProjectDeployer:
    """The Project Deployer of ``node`` (every call names its operation for errors)."""

    def __init__(self, node: DSSNode) -> None:
        self.node = node

    @property
    def name(self) -> str:
        """The node's name in messages."""
        return self.node.name

    def _get(self, path: str, op: str, params: dict[str, Any] | None = None) -> Any:
        return self.node._json(self.node.http.call("GET", path, operation=op, params=params), op)

    # -- infrastructures and published projects ------------------------------------------------------
    def list_infras(self) -> list[dict[str, Any]]:
        """GET /project-deployer/infras: ``[{infraBasicInfo: {id, stage}, canDeploy}]``."""
        got = self._get(f"{BASE}/infras", "list the deployer's infrastructures")
        return [i for i in (got or []) if isinstance(i, dict)]

    def published_project(self, key: str) -> dict[str, Any] | None:
        """GET /project-deployer/projects/{key}: ``packages``, ``deployments``; None if never published."""
        try:
            got = self._get(f"{BASE}/projects/{q(key)}", f"read published project {key}")
        except DSSNotFound:
            return None
        return dict(got or {})

    def upload_bundle(self, key: str, archive: Path) -> None:
        """POST /project-deployer/projects/bundles?projectKey= (multipart ``file``): publish an archive."""
        op = f"publish bundle {archive.name} of project {key} to the deployer"
        body = MultipartFile(Path(archive), field="file")
        self.node.http.send(
            "POST", f"{BASE}/projects/bundles", operation=op, params={"projectKey": key}, data=body,
            headers={"Content-Type": body.content_type},
        ).close()  # fmt: skip

    # -- deployments -----------------------------------------------------------------------------------
    def create_deployment(self, deployment_id: str, key: str, infra: str, bundle_id: str) -> None:
        """POST /project-deployer/deployments: a new deployment of ``bundle_id`` (not updated yet)."""
        body = {
            "deploymentId": deployment_id,
            "publishedProjectKey": key,
            "infraId": infra,
            "bundleId": bundle_id,
        }
        op = f"create deployment {deployment_id}"
        self.node.http.call(
            "POST", f"{BASE}/deployments", operation=op, idempotent=False, json=body,
            params={"ignoreWarnings": "false"},
        ).close()  # fmt: skip

    def settings(self, deployment_id: str) -> dict[str, Any]:
        """GET /project-deployer/deployments/{id}/settings."""
        op = f"read the settings of deployment {deployment_id}"
        return dict(self._get(f"{BASE}/deployments/{q(deployment_id)}/settings", op) or {})

    def save_settings(self, deployment_id: str, settings: dict[str, Any]) -> None:
        """PUT /project-deployer/deployments/{id}/settings (the whole object)."""
        op = f"save the settings of deployment {deployment_id}"
        self.node.http.call(
            "PUT", f"{BASE}/deployments/{q(deployment_id)}/settings", operation=op, json=settings,
            params={"ignoreWarnings": "false"},
        ).close()  # fmt: skip

    def update(self, deployment_id: str, deadline_s: float, tick: float = 1.0) -> Any:
        """POST …/actions/update, then wait on its future; DSSTimeout after aborting it at the deadline."""
        op = f"update deployment {deployment_id}"
        resp = self.node.http.call(
            "POST", f"{BASE}/deployments/{q(deployment_id)}/actions/update", operation=op, idempotent=False
        )
        future = self.node._json(resp, op) or {}
        return wait_for_future(self.node, future, deadline_s, operation=op, tick=tick)

    def status(self, deployment_id: str) -> dict[str, Any]:
        """GET …/{id}/status (the heavy status): ``health``, ``healthMessages``."""
        op = f"read the status of deployment {deployment_id}"
        return dict(self._get(f"{BASE}/deployments/{q(deployment_id)}/status", op) or {})

    def governance_status(self, deployment_id: str, bundle_id: str) -> dict[str, Any]:
        """GET …/{id}/governance-status?bundleId= (dataikuapi ``get_governance_status``): ``messages``."""
        op = f"read the governance status of bundle {bundle_id} for deployment {deployment_id}"
        path = f"{BASE}/deployments/{q(deployment_id)}/governance-status"
        return dict(self._get(path, op, params={"bundleId": bundle_id}) or {})

    def last_update(self, deployment_id: str) -> dict[str, Any]:
        """GET …/{id}/last-update: ``status``, ``logs.lines``, timestamps."""
        op = f"read the last update of deployment {deployment_id}"
        return dict(self._get(f"{BASE}/deployments/{q(deployment_id)}/last-update", op) or {})


def health_messages(status: dict[str, Any]) -> list[dict[str, Any]]:
    """The heavy status's health messages as ``{severity, code, title, message, isFatal}``."""
    raw = status.get("healthMessages") or {}
    items = raw.get("messages") if isinstance(raw, dict) else raw
    out = []
    for m in items or []:
        if isinstance(m, dict):
            out.append(
                {
                    "severity": str(m.get("severity") or "INFO").upper(),
                    "code": str(m.get("code") or ""),
                    "title": str(m.get("title") or ""),
                    "message": str(m.get("message") or m.get("details") or ""),
                    "isFatal": bool(m.get("isFatal", False)),
                }
            )
    return out
