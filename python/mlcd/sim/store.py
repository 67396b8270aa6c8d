"""File-backed state of one stand-in node: projects, bundles, automation projects, futures.

Everything lives under the data dir (see docs/stand-in.md) so that it survives a
restart. Writes are atomic (temporary file + rename); one re-entrant lock
serialises changes of bookkeeping files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from mlcd.sim.errors import SimError, not_found

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")


def now_ms() -> int:
    """Current time as epoch milliseconds (DSS timestamps)."""
    return int(time.time() * 1000)


def read_json(path: Path, default: Any = None) -> Any:
    """Parse a JSON file, or return ``default`` when it does not exist.

    A file that is not valid JSON (hand-edited project files) is a 500 naming the file.
    """
    try:
        with path.open(encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return default
    except (ValueError, UnicodeDecodeError) as exc:
        raise SimError(
            500,
            f"File {path} on the node is not valid JSON ({type(exc).__name__}): fix or remove it",
            code="ERR_INVALID_DATA_FILE",
        ) from None


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON atomically (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_id(value: str, what: str) -> str:
    """Refuse ids that are empty or could escape the data dir (``..``, ``/``)."""
    if not _SAFE_ID.match(value) or ".." in value:
        raise SimError(400, f"Invalid {what} '{value[:80]}'", code="ERR_INVALID_IDENTIFIER")
    return value


class Store:
    """The node's data dir."""

    def __init__(self, data_dir: Path, role: str, node_name: str | None = None) -> None:
        self.root = Path(data_dir).resolve()
        self.role = role
        self.projects_dir = self.root / "projects"
        self.state_dir = self.root / "state"
        self.uploads_dir = self.state_dir / "uploads"
        self.lock = threading.RLock()
        for d in (self.projects_dir, self.state_dir, self.uploads_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._node_name = node_name
        for leftover in self.uploads_dir.iterdir():
            if leftover.is_file():
                leftover.unlink()
            else:
                shutil.rmtree(leftover, ignore_errors=True)

    # -- node ----------------------------------------------------------------------------------

    def node_config(self) -> dict[str, Any]:
        """``node.json`` (read on every call so tests can change it while the node runs)."""
        cfg = read_json(self.root / "node.json", {})
        return cfg if isinstance(cfg, dict) else {}

    @property
    def node_name(self) -> str:
        """The node's name: ``--node-name``, else ``node.json`` ``nodeName``, else the role."""
        return self._node_name or str(self.node_config().get("nodeName") or self.role)

    def connections(self) -> dict[str, Any]:
        """Connections declared on this node (``node.json`` ``connections``)."""
        conns = self.node_config().get("connections") or {}
        return conns if isinstance(conns, dict) else {}

    def node_id(self) -> str:
        """A stable id for this node, created on first use."""
        with self.lock:
            path = self.state_dir / "node-id.json"
            data = read_json(path)
            if not data:
                data = {"nodeId": uuid.uuid4().hex[:12]}
                write_json(path, data)
            return str(data["nodeId"])

    def new_upload_path(self) -> Path:
        """A fresh file path in the uploads area (on the data dir's file system)."""
        return self.uploads_dir / f"upload-{uuid.uuid4().hex}"

    # -- design projects -----------------------------------------------------------------------

    def design_project_dir(self, key: str) -> Path:
        """The folder of design project ``key``; 404 if absent."""
        check_id(key, "project key")
        path = self.projects_dir / key
        if not path.is_dir():
            raise not_found(f"Project '{key}'", code="ERR_PROJECT_NOT_FOUND")
        return path

    def design_project_keys(self) -> list[str]:
        """Keys of the projects on a design node, sorted."""
        return sorted(p.name for p in self.projects_dir.iterdir() if p.is_dir() and _SAFE_ID.match(p.name))

    @staticmethod
    def project_meta(project_dir: Path, key: str) -> dict[str, Any]:
        """``project.json`` of a project folder, with defaults filled in."""
        meta = read_json(project_dir / "project.json", {}) or {}
        meta = dict(meta) if isinstance(meta, dict) else {}
        meta["projectKey"] = key
        meta.setdefault("name", key)
        meta.setdefault("owner", "admin")
        meta.setdefault("description", "")
        meta.setdefault("connections", [])
        return meta

    # -- exported bundles (design) -------------------------------------------------------------

    def exported_dir(self, key: str) -> Path:
        """Where the exported bundles of ``key`` are stored."""
        return self.state_dir / "exported" / check_id(key, "project key")

    def exported_bundles(self, key: str) -> list[dict[str, Any]]:
        """Metadata of the bundles exported for ``key``, oldest first."""
        d = self.exported_dir(key)
        if not d.is_dir():
            return []
        items = [read_json(p) for p in d.glob("*.json")]
        return sorted((i for i in items if i), key=lambda i: (i.get("exportedOn", 0), i.get("bundleId", "")))

    # -- automation projects -------------------------------------------------------------------

    def auto_dir(self, key: str) -> Path:
        """Bookkeeping folder of automation project ``key``."""
        return self.state_dir / "automation" / check_id(key, "project key")

    def auto_project(self, key: str) -> dict[str, Any]:
        """State of automation project ``key``; 404 if it was never created."""
        data = read_json(self.auto_dir(key) / "project.json")
        if not data:
            raise not_found(f"Project '{key}'", code="ERR_PROJECT_NOT_FOUND")
        return dict(data)

    def save_auto_project(self, key: str, data: dict[str, Any]) -> None:
        """Persist the state of automation project ``key``."""
        write_json(self.auto_dir(key) / "project.json", data)

    def auto_project_keys(self) -> list[str]:
        """Keys of the projects on an automation node, sorted."""
        base = self.state_dir / "automation"
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if (p / "project.json").is_file())

    def imported_dir(self, key: str, bundle_id: str) -> Path:
        """Folder of imported bundle ``bundle_id`` of ``key`` (``meta.json`` + ``content/``)."""
        return self.auto_dir(key) / "bundles" / check_id(bundle_id, "bundle id")

    def imported_bundles(self, key: str) -> list[dict[str, Any]]:
        """Metadata of every bundle imported into ``key``, oldest import first."""
        base = self.auto_dir(key) / "bundles"
        if not base.is_dir():
            return []
        items = [read_json(p / "meta.json") for p in base.iterdir() if (p / "meta.json").is_file()]
        return sorted((i for i in items if i), key=lambda i: (i.get("importedOn", 0), i.get("bundleId", "")))

    def project_content_dir(self, key: str) -> Path:
        """The content a project's scenarios run on: the design folder, or the active bundle's content."""
        if self.role == "design":
            return self.design_project_dir(key)
        project = self.auto_project(key)
        active = project.get("activeBundleId")
        if not active:
            raise SimError(
                400, f"Project '{key}' has no active bundle", code="ERR_BUNDLE_NOT_ACTIVE"
            )
        return self.imported_dir(key, str(active)) / "content"

    def project_exists(self, key: str) -> bool:
        """Whether project ``key`` exists on this node."""
        check_id(key, "project key")
        if self.role == "design":
            return (self.projects_dir / key).is_dir()
        return (self.auto_dir(key) / "project.json").is_file()

    # -- variables -----------------------------------------------------------------------------

    def get_variables(self, key: str) -> dict[str, Any]:
        """``{"standard": {...}, "local": {...}}`` of project ``key``."""
        if self.role == "design":
            data = read_json(self.design_project_dir(key) / "variables.json", {}) or {}
            return {"standard": dict(data.get("standard") or {}), "local": dict(data.get("local") or {})}
        project = self.auto_project(key)
        variables = project.get("variables") or {}
        return {
            "standard": dict(variables.get("standard") or {}),
            "local": dict(variables.get("local") or {}),
        }

    def set_variables(self, key: str, body: Any) -> None:
        """Replace the variables of ``key`` (both ``standard`` and ``local`` must be given)."""
        if not isinstance(body, dict) or not isinstance(body.get("standard"), dict) or not isinstance(
            body.get("local"), dict
        ):
            raise SimError(
                400,
                "Variables must be an object with 'standard' and 'local' objects",
                code="ERR_INVALID_VARIABLES",
                error_type="java.lang.IllegalArgumentException",
            )
        with self.lock:
            if self.role == "design":
                write_json(self.design_project_dir(key) / "variables.json", body)
                return
            project = self.auto_project(key)
            project["variables"] = {"standard": body["standard"], "local": body["local"]}
            self.save_auto_project(key, project)

    # -- project settings ----------------------------------------------------------------------

    def _settings_path(self, key: str) -> Path:
        if self.role == "design":
            self.design_project_dir(key)
            return self.state_dir / "design-settings" / f"{key}.json"
        self.auto_project(key)
        return self.auto_dir(key) / "settings.json"

    def read_settings(self, key: str) -> dict[str, Any] | None:
        """The project's saved settings (None until first saved)."""
        data = read_json(self._settings_path(key))
        return dict(data) if isinstance(data, dict) and data else None

    def write_settings(self, key: str, body: dict[str, Any]) -> None:
        """Replace the project's saved settings."""
        with self.lock:
            write_json(self._settings_path(key), body)

    def switch_active_bundle(self, key: str, bundle_id: str, scenarios_on: dict[str, Any]) -> str | None:
        """Make ``bundle_id`` active (variables, scenario states) in one save; the previous id."""
        content = self.imported_dir(key, bundle_id) / "content"
        bundle_vars = read_json(content / "variables.json", {}) or {}
        with self.lock:
            project = self.auto_project(key)
            previous = project.get("activeBundleId")
            local = (project.get("variables") or {}).get("local") or {}
            states = dict(project.get("scenarioActive") or {})
            project["activeBundleId"] = bundle_id
            for sid, definition in read_scenario_defs(content / "scenarios").items():
                if sid in scenarios_on:
                    states[sid] = bool(scenarios_on[sid])
                elif sid not in states:
                    states[sid] = bool(definition.get("active", False))
            project["activatedOn"] = now_ms()
            project["variables"] = {"standard": dict(bundle_vars.get("standard") or {}), "local": local}
            project["scenarioActive"] = states
            self.save_auto_project(key, project)
        return str(previous) if previous else None

    # -- scenarios definitions -----------------------------------------------------------------

    def scenario_defs(self, key: str) -> dict[str, dict[str, Any]]:
        """Scenario definitions of ``key`` by id (empty before a bundle is active)."""
        if self.role == "design":
            base = self.design_project_dir(key) / "scenarios"
        else:
            project = self.auto_project(key)
            if not project.get("activeBundleId"):
                return {}
            base = self.imported_dir(key, str(project["activeBundleId"])) / "content" / "scenarios"
        return read_scenario_defs(base)

    def scenario_def(self, key: str, sid: str) -> dict[str, Any]:
        """One scenario definition; 404 if absent."""
        check_id(sid, "scenario id")
        defs = self.scenario_defs(key)
        if sid not in defs:
            raise not_found(f"Scenario '{key}.{sid}'", code="ERR_SCENARIO_NOT_FOUND")
        return defs[sid]

    def scenario_active(self, key: str, sid: str, definition: dict[str, Any]) -> bool:
        """Whether a scenario's automatic triggers are on (automation keeps its own on/off states)."""
        if self.role == "automation":
            states = self.auto_project(key).get("scenarioActive") or {}
            if sid in states:
                return bool(states[sid])
        return bool(definition.get("active", False))

    # -- futures -------------------------------------------------------------------------------

    def save_future(self, state: dict[str, Any]) -> None:
        """Persist a future's state."""
        write_json(self.state_dir / "futures" / f"{state['jobId']}.json", state)

    def get_future(self, job_id: str) -> dict[str, Any]:
        """A future's state; 404 if unknown."""
        data = read_json(self.state_dir / "futures" / f"{check_id(job_id, 'job id')}.json")
        if not data:
            raise not_found(f"Future '{job_id}'", code="ERR_FUTURE_NOT_FOUND")
        return dict(data)



def read_scenario_defs(base: Path) -> dict[str, dict[str, Any]]:
    """Scenario definitions (``*.json``) of a project content's ``scenarios`` folder, by id."""
    result: dict[str, dict[str, Any]] = {}
    if base.is_dir():
        for path in sorted(base.glob("*.json")):
            data = read_json(path, {}) or {}
            if not isinstance(data, dict):
                continue
            sid = str(data.get("id") or path.stem)
            data["id"] = sid
            result[sid] = data
    return result
