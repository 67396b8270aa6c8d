"""A stand-in deployment update: the deployer puts the bundle on the automation node over HTTP.

Like DSS's deployer, the update creates the project from the bundle (first time)
or imports the bundle, writes the deployment's connection and code-env remappings
into the automation project's settings, preloads and activates it (with the
deployment's ``scenariosToActivate`` as ``scenariosActiveOnActivation``), then
writes the deployment's ``localVariables`` over the project's local variables;
each step is one HTTP call to the automation stand-in (its URL and admin key from
``node.json``). How ``localVariables`` meet the node's own local variables is
inferred: dialect ``deployerLocalVariables`` ``override`` (default: the
deployment's values replace those of the same name, the others stay) or
``replace`` (the node's local variables become exactly the deployment's);
``ignored`` is a deployer that never writes them (for mlcd's read-back).
It runs in a thread behind a future (``/futures/{jobId}``), checks between steps
whether the future was aborted, and records an update (status, log lines).

Fault knobs (``deployerFaults`` globs on the bundle id): ``hangBundles`` never
ends (until aborted), ``failBundles`` fails after the import, before activating.
Dialect ``updateFailure``: ``result`` (default: the future ends with a result
``success: false``) or ``dead`` (the future ends without a result) — inferred.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import requests

from mlcd.sim.deployer_state import FUTURE_PREFIX, DeployerState, automation_call
from mlcd.sim.errors import SimError
from mlcd.sim.store import now_ms


class _Aborted(Exception):
    """The update's future was aborted."""


def start_update(state: DeployerState, dep_id: str, requester: str = "api") -> dict[str, Any]:
    """POST …/actions/update: start the update in a thread; the future's first state."""
    settings = state.settings(dep_id)
    infra = state.check_can_deploy(settings["infraId"])
    job_id = FUTURE_PREFIX + uuid.uuid4().hex[:12]
    future = {"jobId": job_id, "hasResult": False, "alive": True, "aborted": False, "startTime": now_ms(),
              "progress": {"states": [{"name": "update", "target": dep_id}]}}  # fmt: skip
    state.store.save_future(future)
    update = {
        "startTimestamp": now_ms(),
        "endTimestamp": 0,
        "type": "UPDATE",
        "requester": requester,
        "status": "RUNNING",
        "bundleId": settings["bundleId"],
        "jobId": job_id,
        "messages": [],
        "logs": {"lines": [f"update of {dep_id} to bundle {settings['bundleId']} started"]},
    }
    state.save_update(dep_id, update)
    worker = _Update(state, settings, infra, update, job_id)
    threading.Thread(target=worker.run, name=f"update-{dep_id}", daemon=True).start()
    return future


class _Update:
    def __init__(
        self,
        state: DeployerState,
        settings: dict[str, Any],
        infra: dict[str, Any],
        update: dict[str, Any],
        job_id: str,
    ) -> None:
        self.state, self.settings, self.infra = state, settings, infra
        self.update, self.job_id = update, job_id
        self.key = settings["deployedProjectKey"]
        self.bid = settings["bundleId"]

    def log(self, line: str) -> None:
        self.update["logs"]["lines"].append(line)
        self.state.save_update(self.settings["id"], self.update)

    def check_aborted(self) -> None:
        try:
            future = self.state.store.get_future(self.job_id)
        except SimError:
            raise _Aborted() from None
        if future.get("aborted") or not future.get("alive"):
            raise _Aborted()

    def run(self) -> None:
        try:
            report = self.steps()
        except _Aborted:
            self.finish("ABORTED", None, "update aborted")
        except (SimError, requests.RequestException, OSError) as exc:
            self.finish("FAILED", None, f"update failed: {exc}")
        except Exception as exc:  # a bug in the stand-in: the update fails, it never hangs
            self.finish("FAILED", None, f"update failed: internal error {type(exc).__name__}: {exc}")
        else:
            errors = [m for m in report.get("messages") or [] if m.get("severity") == "ERROR"]
            if errors:
                self.finish("FAILED", report, f"activation reported an error: {errors[0].get('message')}")
            else:
                self.finish("SUCCESS", report, f"bundle {self.bid} is active on the automation node")

    def steps(self) -> dict[str, Any]:
        state = self.state
        archive = state.bundle_path(self.settings["publishedProjectKey"], self.bid)
        while state.fault_matches(
            "hangBundles", self.bid, self.settings["infraId"]
        ):  # never ends, until aborted
            self.check_aborted()
            time.sleep(0.1)
        keys = [p.get("projectKey") for p in automation_call(self.infra, "GET", "projects/") or []]
        with archive.open("rb") as fh:
            files = {"file": (archive.name, fh, "application/zip")}
            if self.key not in keys:
                self.log(f"creating project {self.key} from bundle {self.bid}")
                automation_call(self.infra, "POST", "projectsFromBundle/", files=files)
            else:
                imported = automation_call(self.infra, "GET", f"projects/{self.key}/bundles/imported") or []
                if isinstance(imported, dict):
                    imported = imported.get("bundles") or []
                if self.bid not in {b.get("bundleId") for b in imported if isinstance(b, dict)}:
                    self.log(f"importing bundle {self.bid}")
                    automation_call(
                        self.infra, "POST", f"projects/{self.key}/bundles/imported/actions/importFromStream",
                        files=files,
                    )  # fmt: skip
        self.check_aborted()
        if state.fault_matches("failBundles", self.bid, self.settings["infraId"]):
            raise SimError(500, "the update failed half way (fault knob failBundles)")
        self.remap()
        self.log(f"preloading bundle {self.bid}")
        automation_call(
            self.infra, "POST", f"projects/{self.key}/bundles/imported/{self.bid}/actions/preload"
        )
        self.check_aborted()
        self.log(f"activating bundle {self.bid}")
        states = self.settings.get("scenariosToActivate")
        body = {"scenariosActiveOnActivation": states} if isinstance(states, dict) and states else {}
        report = automation_call(
            self.infra, "POST", f"projects/{self.key}/bundles/imported/{self.bid}/actions/activate", json=body
        )
        self.apply_variables()
        return dict(report or {})

    def remap(self) -> None:
        remapping = (self.settings.get("bundleContainerSettings") or {}).get("remapping") or {}
        wanted: dict[str, list[Any]] = {
            kind: list(remapping[kind]) for kind in ("connections", "codeEnvs") if remapping.get(kind)
        }
        if not wanted:
            return
        path = f"projects/{self.key}/settings"
        node_settings = automation_call(self.infra, "GET", path) or {}
        container = node_settings.setdefault("bundleContainerSettings", {})
        container.setdefault("remapping", {}).update(wanted)
        automation_call(self.infra, "PUT", path, json=node_settings)
        for kind, pairs in wanted.items():
            shown = ", ".join(f"{m['source']} -> {m['target']}" for m in pairs)
            self.log(f"{'connection' if kind == 'connections' else 'code-env'} remappings written: {shown}")

    def apply_variables(self) -> None:
        """The deployment's ``localVariables`` onto the project's local variables (see the docstring)."""
        wanted = self.settings.get("localVariables")
        mode = self.state.dialect("deployerLocalVariables", "override")
        if not isinstance(wanted, dict) or mode == "ignored":
            return
        path = f"projects/{self.key}/variables/"
        variables = automation_call(self.infra, "GET", path) or {}
        local = dict(wanted) if mode == "replace" else {**(variables.get("local") or {}), **wanted}
        automation_call(self.infra, "PUT", path, json={**variables, "local": local})
        self.log(f"local variables written ({mode}): {', '.join(sorted(wanted)) or 'none'}")

    def finish(self, status: str, report: dict[str, Any] | None, line: str) -> None:
        store = self.state.store
        messages = [m for m in (report or {}).get("messages") or [] if isinstance(m, dict)]
        self.update.update(status=status, endTimestamp=now_ms(), messages=messages)
        self.log(line)
        with store.lock:
            try:
                future = store.get_future(self.job_id)
            except SimError:
                return  # forgotten (restart)
            if future.get("aborted"):
                return
            success = status == "SUCCESS"
            if not success:
                messages = [*messages, {"severity": "ERROR", "message": line, "isFatal": True}]
            future.update(alive=False, endTime=now_ms())
            if success or self.state.dialect("updateFailure", "result") == "result":
                future.update(hasResult=True, result={"anyMessage": bool(messages), "success": success,
                                                      "messages": messages})  # fmt: skip
            else:
                future["unexpectedFailure"] = {"message": line}
            store.save_future(future)
