"""`APIDeployerNode`: the DSS calls of an API service's release, on the node running the API Deployer.

Paths and shapes follow dataikuapi 15.2 (``dss/apiservice.py``, ``dss/apideployer.py``;
see docs/stand-in.md, "API Deployer"). Package creation, publication, deployment
creation and update start are sent once (a retry could make a second package or
start a second update); reads are retried. The node is a :class:`DSSNode`, so
futures are waited on with :func:`mlcd.dss.futures.wait_for_future`.
"""

from __future__ import annotations

from typing import Any

from mlcd.dss.errors import DSSNotFound
from mlcd.dss.node import DSSNode
from mlcd.dss.nodebase import q

SINGLE_GENERATION = "SINGLE_GENERATION"


class APIDeployerNode(DSSNode):
    """The design node's API-service calls and its API Deployer (``/api-deployer/...``)."""

    # -- design node: API service versions -----------------------------------------------------
    def list_packages(self, project: str, service: str) -> list[dict[str, Any]]:
        """GET /projects/{key}/apiservices/{svc}/packages: ``[{id, createdOn}]``."""
        path = f"projects/{q(project)}/apiservices/{q(service)}/packages"
        return self._list(self._get(path, f"list versions of API service {service}"), "packages")

    def service_settings(self, project: str, service: str) -> dict[str, Any]:
        """GET /projects/{key}/apiservices/{svc}/settings: ``endpoints`` ``[{id, type, ...}]``."""
        path = f"projects/{q(project)}/apiservices/{q(service)}/settings"
        return dict(self._get(path, f"read settings of API service {service}") or {})

    def create_package(self, project: str, service: str, version: str, release_notes: str | None) -> None:
        """POST /projects/{key}/apiservices/{svc}/packages/{version}?releaseNotes= (sent once)."""
        path = f"projects/{q(project)}/apiservices/{q(service)}/packages/{q(version)}"
        params = {"releaseNotes": release_notes} if release_notes else None
        op = f"package version {version} of API service {service}"
        self.http.call("POST", path, operation=op, idempotent=False, params=params).close()

    def publish_package(self, project: str, service: str, version: str) -> None:
        """POST .../packages/{version}/publish?publishedServiceId={svc} (sent once)."""
        path = f"projects/{q(project)}/apiservices/{q(service)}/packages/{q(version)}/publish"
        op = f"publish version {version} of API service {service} to the API Deployer"
        self.http.call(
            "POST", path, operation=op, idempotent=False, params={"publishedServiceId": service}
        ).close()

    # -- API Deployer --------------------------------------------------------------------------
    def published_service(self, service: str) -> dict[str, Any] | None:
        """GET /api-deployer/services/{svc}: ``packages``, ``deployments``; None when not published."""
        try:
            answer = self._get(f"api-deployer/services/{q(service)}", f"read published service {service}")
        except DSSNotFound:
            return None
        return dict(answer or {})

    def infra(self, infra_id: str) -> dict[str, Any]:
        """GET /api-deployer/infras/{id} (light status); DSSNotFound when there is no such infrastructure."""
        return dict(self._get(f"api-deployer/infras/{q(infra_id)}", f"read infrastructure {infra_id}") or {})

    def create_deployment(self, deployment_id: str, service: str, infra_id: str, version: str) -> None:
        """POST /api-deployer/deployments with ``{deploymentId, publishedServiceId, infraId, version}``."""
        body = {
            "deploymentId": deployment_id,
            "publishedServiceId": service,
            "infraId": infra_id,
            "version": version,
        }
        self.http.call(
            "POST", "api-deployer/deployments", operation=f"create deployment {deployment_id}",
            idempotent=False, params={"ignoreWarnings": "false"}, json=body,
        ).close()  # fmt: skip

    def deployment_settings(self, deployment_id: str) -> dict[str, Any]:
        """GET /api-deployer/deployments/{id}/settings (DSSNotFound when there is no such deployment)."""
        path = f"api-deployer/deployments/{q(deployment_id)}/settings"
        return dict(self._get(path, f"read settings of deployment {deployment_id}") or {})

    def save_deployment_settings(self, deployment_id: str, settings: dict[str, Any]) -> None:
        """PUT the whole settings object back (the same content: retried on transient faults)."""
        path = f"api-deployer/deployments/{q(deployment_id)}/settings"
        self.http.call(
            "PUT", path, operation=f"save settings of deployment {deployment_id}",
            params={"ignoreWarnings": "false"}, json=settings,
        ).close()  # fmt: skip

    def start_update(self, deployment_id: str) -> dict[str, Any]:
        """POST /api-deployer/deployments/{id}/actions/update: the future (``jobId``, or a result)."""
        path = f"api-deployer/deployments/{q(deployment_id)}/actions/update"
        resp = self.http.call("POST", path, operation=f"update deployment {deployment_id}", idempotent=False)
        return dict(self._json(resp, f"update deployment {deployment_id}") or {})

    def deployment_status(self, deployment_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(light, heavy) status: GET /api-deployer/deployments/{id} and .../{id}/status."""
        base = f"api-deployer/deployments/{q(deployment_id)}"
        light = self._get(base, f"read deployment {deployment_id}") or {}
        heavy = self._get(f"{base}/status", f"read the health of deployment {deployment_id}") or {}
        return dict(light), dict(heavy)


def single_generation(settings: dict[str, Any]) -> str | None:
    """The version a deployment's settings map all traffic to (None: no single-generation mapping)."""
    mapping = settings.get("generationsMapping")
    if not isinstance(mapping, dict) or mapping.get("mode") != SINGLE_GENERATION:
        return None
    gen = mapping.get("generation")
    return str(gen) if gen else None


def with_single_generation(settings: dict[str, Any], version: str) -> dict[str, Any]:
    """The settings mapping all traffic to ``version`` (as dataikuapi's ``set_single_version`` does)."""
    out = dict(settings)
    out["generationsMapping"] = {"mode": SINGLE_GENERATION, "generation": version}
    return out


def service_urls(light: dict[str, Any], heavy: dict[str, Any]) -> list[str]:
    """``<api node url>/public/api/v1/<service>`` per API node the deployment reports (dataikuapi's rule)."""
    info = light.get("deploymentBasicInfo") or {}
    service = info.get("deployedServiceId") or info.get("publishedServiceId")
    if not service:
        return []
    nodes = heavy.get("apiNodes")
    if isinstance(nodes, list):
        return [f"{str(n.get('url')).rstrip('/')}/public/api/v1/{service}" for n in nodes if n.get("url")]
    public = heavy.get("publicURL")
    return [f"{str(public).rstrip('/')}/public/api/v1/{service}"] if public else []


def health_messages(heavy: dict[str, Any]) -> list[str]:
    """The deployment's health messages as ``SEVERITY: title: message`` lines."""
    box = heavy.get("healthMessages") or {}
    items = box.get("messages") if isinstance(box, dict) else None
    lines = []
    for m in items or []:
        if isinstance(m, dict):
            text = ": ".join(str(x) for x in (m.get("title"), m.get("message")) if x)
            lines.append(f"{m.get('severity') or 'INFO'}: {text}")
    return lines
