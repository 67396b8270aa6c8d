"""The stand-in Project Deployer's state: infrastructures, published projects, deployments, updates.

Infrastructures come from ``node.json`` (read on every call)::

    {"infras": {"prod-infra": {"stage": "prod", "automationUrl": "http://127.0.0.1:8101",
                               "automationApiKey": "...", "canDeploy": true}},
     "deployerFaults": {"hangBundles": ["*_b3"], "failBundles": [],
                        "unhealthyBundles": ["prod-infra/*_b4"], "warningBundles": [],
                        "healthUnknown": false, "governUnapproved": []}}

Each knob is a list of globs matched against the bundle id, or ``<infra id>/<bundle id>``.

Published bundles, deployments and update records live under ``<data dir>/deployer/``
and survive a restart; an update that was running when the node stopped is
recorded as failed; its future is gone (404: futures live in memory in DSS, inferred),
or with dialect ``futureAfterRestart: "dead"`` still known but ended without a result.
Health is derived from what happened (see :meth:`DeployerState.health`).
"""

from __future__ import annotations

import fnmatch
import shutil
from pathlib import Path
from typing import Any

import requests

from mlcd.sim.errors import SimError, bad_request, not_found
from mlcd.sim.store import Store, check_id, now_ms, read_json, write_json

FUTURE_PREFIX = "deployer-update-"


class DeployerState:
    """File-backed state of one stand-in deployer (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.root = store.root / "deployer"
        (self.root / "projects").mkdir(parents=True, exist_ok=True)
        (self.root / "deployments").mkdir(parents=True, exist_ok=True)
        self._forget_running_updates()

    # -- node.json ---------------------------------------------------------------------------------
    def infras(self) -> dict[str, dict[str, Any]]:
        """Infrastructures by id (``node.json`` ``infras``)."""
        raw = self.store.node_config().get("infras") or {}
        return {str(k): dict(v) for k, v in raw.items() if isinstance(v, dict)}

    def infra(self, infra_id: str) -> dict[str, Any]:
        """One infrastructure; 404 if unknown."""
        found = self.infras().get(infra_id)
        if found is None:
            raise not_found(f"Infrastructure '{infra_id}'", code="ERR_PROJECT_DEPLOYER_INFRA_NOT_FOUND")
        return found

    def faults(self) -> dict[str, Any]:
        """Fault knobs (``node.json`` ``deployerFaults``)."""
        raw = self.store.node_config().get("deployerFaults") or {}
        return raw if isinstance(raw, dict) else {}

    def fault_matches(self, knob: str, bundle_id: str, infra: str = "") -> bool:
        """Whether a glob of the list ``knob`` matches ``bundle_id`` (or ``<infra>/<bundle_id>``)."""
        names = (bundle_id, f"{infra}/{bundle_id}")
        return any(fnmatch.fnmatchcase(n, str(p)) for p in self.faults().get(knob) or [] for n in names)

    def dialect(self, name: str, default: str) -> str:
        """A reading of an unconfirmed behaviour (``node.json`` ``dialect``)."""
        raw = self.store.node_config().get("dialect") or {}
        return str(raw.get(name, default)) if isinstance(raw, dict) else default

    # -- published projects ----------------------------------------------------------------------------
    def _project_dir(self, key: str) -> Path:
        return self.root / "projects" / check_id(key, "project key")

    def project_keys(self) -> list[str]:
        """Keys of the published projects."""
        return sorted(p.name for p in (self.root / "projects").iterdir() if p.is_dir())

    def packages(self, key: str) -> list[dict[str, Any]]:
        """The bundles published for ``key``, oldest first."""
        items = read_json(self._project_dir(key) / "packages.json", []) or []
        return [dict(i) for i in items if isinstance(i, dict)]

    def publish(self, key: str, archive: Path, manifest: dict[str, Any]) -> dict[str, Any]:
        """Store an uploaded archive as a published bundle (409 if that id holds other content)."""
        bid = check_id(str(manifest["bundleId"]), "bundle id")
        folder = self._project_dir(key)
        with self.store.lock:
            items = self.packages(key)
            for item in items:
                if item["id"] == bid:
                    if str(item.get("exportedOn")) != str(manifest.get("exportedOn")):
                        raise SimError(
                            409,
                            f"Bundle {bid} is already published with other content",
                            code="ERR_BUNDLE_EXISTS",
                        )
                    return item
            (folder / "bundles").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(archive, folder / "bundles" / f"{bid}.zip")
            item = {"id": bid, "publishedOn": now_ms(), "exportedOn": manifest.get("exportedOn")}
            items.append(item)
            write_json(folder / "packages.json", items)
        return item

    def bundle_path(self, key: str, bundle_id: str) -> Path:
        """The archive of a published bundle; 404 if not published."""
        path = self._project_dir(key) / "bundles" / f"{check_id(bundle_id, 'bundle id')}.zip"
        if not path.is_file():
            raise not_found(f"Bundle {bundle_id} of published project {key}", code="ERR_BUNDLE_NOT_FOUND")
        return path

    def project_status(self, key: str) -> dict[str, Any]:
        """GET /project-deployer/projects/{key}: packages and deployments; 404 if never published."""
        if not self._project_dir(key).is_dir():
            raise not_found(f"Published project '{key}'", code="ERR_PROJECT_DEPLOYER_PROJECT_NOT_FOUND")
        deps = [d for d in self.deployments() if d["publishedProjectKey"] == key]
        return {
            "projectBasicInfo": {"id": key, "name": key},
            "packages": self.packages(key),
            "deployments": [
                {"id": d["id"], "infraId": d["infraId"], "bundleId": d["bundleId"]} for d in deps
            ],
        }

    # -- deployments -------------------------------------------------------------------------------------
    def _dep_path(self, dep_id: str) -> Path:
        return self.root / "deployments" / f"{check_id(dep_id, 'deployment id')}.json"

    def deployments(self) -> list[dict[str, Any]]:
        """Every deployment's settings."""
        return [s for p in sorted((self.root / "deployments").glob("*.json")) if (s := read_json(p))]

    def settings(self, dep_id: str) -> dict[str, Any]:
        """A deployment's settings; 404 if unknown."""
        data = read_json(self._dep_path(dep_id))
        if not data:
            raise not_found(f"Deployment '{dep_id}'", code="ERR_PROJECT_DEPLOYER_DEPLOYMENT_NOT_FOUND")
        return dict(data)

    def create(self, body: Any) -> dict[str, Any]:
        """POST /project-deployer/deployments (the bundle must be published, the infra known)."""
        if not isinstance(body, dict):
            raise bad_request("Deployment creation body must be a JSON object")
        missing = [
            k for k in ("deploymentId", "publishedProjectKey", "infraId", "bundleId") if not body.get(k)
        ]
        if missing:
            raise bad_request(f"Missing field(s): {', '.join(missing)}")
        dep_id, key = str(body["deploymentId"]), str(body["publishedProjectKey"])
        self.check_can_deploy(str(body["infraId"]))
        self.bundle_path(key, str(body["bundleId"]))
        with self.store.lock:
            if self._dep_path(dep_id).exists():
                raise SimError(409, f"Deployment '{dep_id}' already exists", code="ERR_DEPLOYMENT_EXISTS")
            settings = {
                "id": dep_id,
                "publishedProjectKey": key,
                "infraId": str(body["infraId"]),
                "bundleId": str(body["bundleId"]),
                "deployedProjectKey": str(body.get("deployedProjectKey") or key),
                "bundleContainerSettings": {"remapping": {"connections": []}},
                "tags": [],
            }
            write_json(self._dep_path(dep_id), settings)
        return settings

    def check_can_deploy(self, infra_id: str) -> dict[str, Any]:
        """The infrastructure, or 403 when this key may not deploy to it (``canDeploy: false``)."""
        infra = self.infra(infra_id)
        if infra.get("canDeploy") is False:
            raise SimError(
                403, f"You may not deploy to infrastructure '{infra_id}'", code="ERR_SECURITY_DENIED"
            )
        return infra

    def save_settings(self, dep_id: str, body: Any) -> None:
        """PUT …/settings: id, project and infra cannot change; the bundle must be published."""
        old = self.settings(dep_id)
        if not isinstance(body, dict):
            raise bad_request("Deployment settings must be a JSON object")
        for fixed in ("id", "publishedProjectKey", "infraId"):
            if body.get(fixed, old[fixed]) != old[fixed]:
                raise bad_request(f"Deployment settings: '{fixed}' cannot be changed")
        self.bundle_path(old["publishedProjectKey"], str(body.get("bundleId") or ""))
        write_json(self._dep_path(dep_id), {**old, **body})

    def delete(self, dep_id: str) -> None:
        """DELETE a deployment (and its update history)."""
        self.settings(dep_id)
        self._dep_path(dep_id).unlink()
        shutil.rmtree(self.root / "updates" / dep_id, ignore_errors=True)

    # -- updates -------------------------------------------------------------------------------------------
    def updates(self, dep_id: str) -> list[dict[str, Any]]:
        """Update records of a deployment, oldest first."""
        base = self.root / "updates" / check_id(dep_id, "deployment id")
        return [u for p in sorted(base.glob("*.json")) if (u := read_json(p))] if base.is_dir() else []

    def save_update(self, dep_id: str, update: dict[str, Any]) -> None:
        """Write one update record (named by its start timestamp)."""
        write_json(self.root / "updates" / dep_id / f"{update['startTimestamp']:015d}.json", update)

    def update(self, dep_id: str, ts: str | None = None) -> dict[str, Any]:
        """The last update (or the one started at ``ts``); 404 if none."""
        items = self.updates(dep_id)
        if ts is not None:
            items = [u for u in items if str(u["startTimestamp"]) == str(ts)]
        if not items:
            raise not_found(f"Update of deployment '{dep_id}'", code="ERR_UPDATE_NOT_FOUND")
        return items[-1]

    def _forget_running_updates(self) -> None:
        """After a restart: running updates failed, their futures are gone (inferred)."""
        for dep in self.deployments():
            for update in self.updates(dep["id"]):
                if update.get("status") == "RUNNING":
                    update["status"] = "FAILED"
                    update["endTimestamp"] = now_ms()
                    update["logs"]["lines"].append("update interrupted: the deployer restarted")
                    self.save_update(dep["id"], update)
        gone = self.dialect("futureAfterRestart", "gone") == "gone"
        for path in (self.store.state_dir / "futures").glob(f"{FUTURE_PREFIX}*.json"):
            future = read_json(path) or {}
            if not future.get("alive"):
                continue
            if gone:
                path.unlink(missing_ok=True)
            else:  # dialect "dead": the future is still known, ended without a result
                write_json(path, {**future, "alive": False, "hasResult": False})

    # -- governance -----------------------------------------------------------------------------------
    def governance(self, dep_id: str, bundle_id: str) -> dict[str, Any]:
        """The governance status of ``bundle_id`` (default: the deployment's): knob ``governUnapproved``."""
        settings = self.settings(dep_id)
        bid = bundle_id or settings["bundleId"]
        self.bundle_path(settings["publishedProjectKey"], bid)
        if self.fault_matches("governUnapproved", bid, settings["infraId"]):
            text = f"bundle {bid} has not been approved in Dataiku Govern (knob governUnapproved)"
            refused = _msg("ERROR", "ERR_GOVERN_BUNDLE_NOT_APPROVED", "Bundle not approved", text)
            return {"messages": [refused]}
        approved = _msg("SUCCESS", "GOVERN_APPROVED", "Bundle approved", f"bundle {bid} is approved")
        return {"messages": [approved]}

    # -- health -------------------------------------------------------------------------------------------
    def health(self, dep_id: str) -> dict[str, Any]:
        """The heavy status: health from the last update, the automation node and the fault knobs."""
        settings = self.settings(dep_id)
        health, messages = self._derive(settings)
        return {
            "deploymentId": dep_id,
            "health": health,
            "healthMessages": {
                "messages": messages,
                "maxSeverity": max((m["severity"] for m in messages), key=_SEVERITY.index, default=None),
            },
        }

    def _derive(self, settings: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        if self.faults().get("healthUnknown"):
            return "UNKNOWN", [
                _msg("INFO", "HEALTH_UNKNOWN", "Health not computed", "no health check ran yet")
            ]
        updates = self.updates(settings["id"])
        if not updates:
            return "OUT_OF_SYNC", [_msg("WARNING", "NEVER_DEPLOYED", "Never deployed", "no update ran yet")]
        last = updates[-1]
        if last.get("status") in ("FAILED", "ABORTED"):
            text = (last.get("logs") or {}).get("lines", ["update failed"])[-1]
            return "ERROR", [_msg("ERROR", "UPDATE_FAILED", f"Last update {last['status']}", text)]
        if last.get("status") == "RUNNING":
            return "UNKNOWN", [_msg("INFO", "UPDATE_RUNNING", "Update running", "an update is in progress")]
        return self._node_health(settings, last)

    def _node_health(
        self, settings: dict[str, Any], last: dict[str, Any]
    ) -> tuple[str, list[dict[str, Any]]]:
        key, bid = settings["deployedProjectKey"], settings["bundleId"]
        try:
            on_node = automation_call(self.infra(settings["infraId"]), "GET", "projects/")
        except (requests.RequestException, SimError) as exc:
            return "UNKNOWN", [
                _msg("WARNING", "NODE_UNREACHABLE", "Automation node unreachable", str(exc)[:200])
            ]
        project = next((p for p in on_node or [] if p.get("projectKey") == key), None)
        if project is None:
            return "ERROR", [_msg("ERROR", "PROJECT_MISSING", "Project missing", f"{key} is not on the node")]
        active = (project.get("activeBundleState") or {}).get("bundleId")
        if active != bid or last.get("bundleId") != bid:
            text = f"the node has {active or 'no bundle'} active, the deployment says {bid}"
            return "OUT_OF_SYNC", [_msg("WARNING", "OUT_OF_SYNC", "Settings diverge from the node", text)]
        return self._health_when_in_sync(settings, last)

    def _health_when_in_sync(
        self, settings: dict[str, Any], last: dict[str, Any]
    ) -> tuple[str, list[dict[str, Any]]]:
        """Health of a deployment whose bundle is active on the node: the knobs, then activation warnings."""
        bid = settings["bundleId"]
        if self.fault_matches("unhealthyBundles", bid, settings["infraId"]):
            text = f"bundle {bid} is active but its project reports failures (fault knob unhealthyBundles)"
            return "UNHEALTHY", [_msg("ERROR", "PROJECT_UNHEALTHY", "Project unhealthy", text)]
        warnings = [m for m in last.get("messages") or [] if m.get("severity") == "WARNING"]
        if self.fault_matches("warningBundles", bid, settings["infraId"]):
            warnings.append(
                {"code": "SCENARIO_UNKNOWN", "message": "a scenario's last run is unknown (knob)"}
            )
        if warnings:
            return "WARNING", [
                _msg(
                    "WARNING",
                    str(m.get("code") or "ACTIVATION_WARNING"),
                    "Activation warning",
                    m.get("message"),
                )
                for m in warnings
            ]
        return "HEALTHY", [
            _msg("SUCCESS", "IN_SYNC", "Deployment healthy", f"bundle {bid} is active and in sync")
        ]


_SEVERITY = ["SUCCESS", "INFO", "WARNING", "ERROR"]


def _msg(severity: str, code: str, title: str, message: Any) -> dict[str, Any]:
    return {
        "severity": severity,
        "isFatal": severity == "ERROR",
        "code": code,
        "title": title,
        "message": str(message or ""),
        "details": "",
    }


def automation_call(infra: dict[str, Any], method: str, path: str, **kwargs: Any) -> Any:
    """Call the infrastructure's automation node (its URL and admin key); SimError on an error answer."""
    url = str(infra.get("automationUrl") or "").rstrip("/") + "/public/api/" + path
    kwargs.setdefault("timeout", 60)
    resp = requests.request(method, url, auth=(str(infra.get("automationApiKey") or ""), ""), **kwargs)
    if resp.status_code >= 400:
        try:
            body = resp.json()
        except ValueError:
            body = {"message": resp.text[:200]}
        raise SimError(502 if resp.status_code >= 500 else 400, f"automation node: {body.get('message')}")
    return resp.json() if resp.content else None
