"""The stand-in's rules: projects, settings, bundles and activation of one node (no HTTP here).

:class:`NodeBackend` holds what DSS decides (which project exists, what an
export or an activation does, which connections a bundle needs); the Flask
layer in :mod:`mlcd.sim.server` only parses requests and writes answers. Every
behaviour public evidence does not confirm reads its reading from the node's
:class:`~mlcd.sim.dialects.Dialect` (``node.json``).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from mlcd.sim import bundles, envstate
from mlcd.sim.dialects import REMAPPING_KEY, Dialect
from mlcd.sim.errors import UNAUTHORIZED, SimError, bad_request, not_found
from mlcd.sim.store import Store, check_id, now_ms, read_json, write_json

DSS_VERSION = "15.2.0"
ACTIVATE_FIELDS = frozenset({"scenariosActiveOnActivation"})
MISSING_CONNECTION = "ERR_BUNDLE_ACTIVATE_MISSING_CONNECTION"


def default_settings(key: str) -> dict[str, Any]:
    """Settings of a project never saved: the shape dataikuapi's DSSProjectSettings reads.

    Remappings live in ``bundleContainerSettings.remapping.connections`` (see
    docs/stand-in.md: the UI's activation-settings tab, the Project Deployer's
    deployment settings and a probe of a real project all show this shape).
    """
    return {
        "projectKey": key,
        "settings": {
            "codeEnvs": {
                "python": {"mode": "USE_BUILTIN_MODE", "useBuiltinEnv": True},
                "r": {"mode": "USE_BUILTIN_MODE", "useBuiltinEnv": True},
            },
            "container": {"containerMode": "NONE"},
        },
        "bundleContainerSettings": {
            "remapping": {"connections": [], "codeEnvs": [], "containerExecs": []},
            "codeEnvsBehavior": {},
        },
        "exposedObjects": {"objects": []},
    }


def remapping_list(settings: dict[str, Any]) -> Any:
    """The value at ``bundleContainerSettings.remapping.connections`` (None when absent)."""
    container = settings.get("bundleContainerSettings")
    remapping = container.get("remapping") if isinstance(container, dict) else None
    return remapping.get("connections") if isinstance(remapping, dict) else None


def check_settings(body: Any) -> None:
    """Refuse settings that are not an object, or whose connection remappings are malformed (400)."""
    if not isinstance(body, dict):
        raise SimError(400, "Project settings must be a JSON object", code="ERR_INVALID_SETTINGS")
    remaps = remapping_list(body)
    if remaps is None:
        return
    if not isinstance(remaps, list) or not all(
        isinstance(r, dict) and isinstance(r.get("source"), str) and isinstance(r.get("target"), str)
        for r in remaps
    ):
        raise SimError(
            400,
            f'{REMAPPING_KEY} must be a list of {{"source": "<connection>", "target": "<connection>"}}',
            code="ERR_INVALID_SETTINGS",
        )


class NodeBackend:
    """DSS's behaviour on one stand-in node (state in :class:`Store`, readings in the dialect)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def dialect(self) -> Dialect:
        """The node's current dialect (``node.json`` is read on every call)."""
        return Dialect.from_node_config(self.store.node_config())

    # -- errors --------------------------------------------------------------------------------
    def missing_project(self, key: str) -> SimError:
        """The error for an unknown project: 401 "Failed to read project permissions" or a 404."""
        if self.dialect.missing_project == "404":
            return not_found(f"Project '{key}'", code="ERR_PROJECT_NOT_FOUND")
        return SimError(
            401,
            "Failed to read project permissions",
            error_type=UNAUTHORIZED,
            detailed_message=f"Failed to read project permissions (project '{key}')",
        )

    def require_project(self, key: str) -> None:
        """Raise :meth:`missing_project` unless ``key`` exists."""
        check_id(key, "project key")
        if not self.store.project_exists(key):
            raise self.missing_project(key)

    def require_role(self, role: str, action: str) -> None:
        """400 ``ERR_NOT_SUPPORTED_ON_THIS_NODE`` unless this node has ``role``."""
        if self.store.role != role:
            raise SimError(
                400,
                f"{action} is only possible on a {role} node, this is a {self.store.role} node",
                code="ERR_NOT_SUPPORTED_ON_THIS_NODE",
            )

    # -- node ----------------------------------------------------------------------------------
    def instance_info(self) -> dict[str, Any]:
        """GET /instance-info."""
        store = self.store
        return {
            "nodeId": store.node_id(),
            "nodeName": store.node_name,
            "nodeType": store.role.upper(),
            "dssVersion": DSS_VERSION,
            "simulated": True,
        }

    def auth_info(self) -> dict[str, Any]:
        """GET /auth/info."""
        admin = self.dialect.api_key_is_admin
        groups = ["administrators"] if admin else ["data_team"]
        return {"authIdentifier": "mlcd-sim-api-key", "groups": groups, "isAdmin": admin}

    def list_connections(self) -> dict[str, Any]:
        """GET /admin/connections/: admin keys only (403, or 401 in that dialect, otherwise)."""
        dialect = self.dialect
        if not dialect.api_key_is_admin:
            if dialect.connections_non_admin == "401":
                raise SimError(401, "You are not authorized to list connections", error_type=UNAUTHORIZED)
            raise SimError(
                403, "Action forbidden: you are not an administrator", code="ERR_SECURITY_ADMIN_REQUIRED"
            )
        items = {}
        for name, conn in sorted(self.store.connections().items()):
            conn = conn if isinstance(conn, dict) else {}
            items[name] = {
                "name": name,
                "type": str(conn.get("type") or "Filesystem"),
                "allowWrite": True,
                "usableBy": "ALL",
                "params": dict(conn.get("params") or {}),
            }
        return items

    # -- projects ------------------------------------------------------------------------------
    def project_summary(self, key: str) -> dict[str, Any]:
        """GET /projects/{key}: the summary (``activeBundleState`` on automation)."""
        self.require_project(key)
        store = self.store
        if store.role == "design":
            meta = store.project_meta(store.design_project_dir(key), key)
            return {k: v for k, v in meta.items() if k != "connections"}
        project = store.auto_project(key)
        summary: dict[str, Any] = {
            "projectKey": key,
            "name": project.get("name", key),
            "owner": project.get("owner", "admin"),
            "description": project.get("description", ""),
        }
        if project.get("activeBundleId"):
            summary["activeBundleState"] = {
                "bundleId": project["activeBundleId"],
                "activatedOn": project.get("activatedOn", 0),
            }
        return summary

    def list_projects(self) -> list[dict[str, Any]]:
        """GET /projects/."""
        store = self.store
        keys = store.design_project_keys() if store.role == "design" else store.auto_project_keys()
        items = []
        for key in keys:
            try:
                items.append(self.project_summary(key))
            except SimError:
                continue
        return items

    def delete_project(self, key: str) -> dict[str, Any]:
        """DELETE /projects/{key}: delete now, answer a finished future."""
        self.require_project(key)
        store = self.store
        with store.lock:
            if store.role == "design":
                bundles.remove_tree(store.projects_dir / key)
                bundles.remove_tree(store.exported_dir(key))
            else:
                bundles.remove_tree(store.auto_dir(key))
        state = {
            "jobId": f"delete-{key}-{uuid.uuid4().hex[:8]}",
            "hasResult": True,
            "alive": False,
            "aborted": False,
            "result": {"anyMessage": False, "success": True, "messages": []},
            "progress": {"states": []},
            "startTime": now_ms(),
        }
        store.save_future(state)
        return state

    def get_variables(self, key: str) -> dict[str, Any]:
        """GET /projects/{key}/variables/."""
        self.require_project(key)
        return self.store.get_variables(key)

    def set_variables(self, key: str, body: Any) -> None:
        """PUT /projects/{key}/variables/."""
        self.require_project(key)
        self.store.set_variables(key, envstate.variables_to_store(self.dialect, self.store, key, body))

    # -- settings ------------------------------------------------------------------------------
    def get_settings(self, key: str) -> dict[str, Any]:
        """GET /projects/{key}/settings."""
        self.require_project(key)
        data = self.store.read_settings(key)
        return data if data else default_settings(key)

    def set_settings(self, key: str, body: Any) -> None:
        """PUT /projects/{key}/settings: replace them ("ignored" dialect: the remapping key is dropped)."""
        self.require_project(key)
        check_settings(body)
        with self.store.lock:
            if self.dialect.remapping_key == "ignored":
                kept = remapping_list(self.get_settings(key))
                body["bundleContainerSettings"] = {"remapping": {"connections": kept or []}}
            self.store.write_settings(
                key, envstate.settings_to_store(self.dialect, self.store.read_settings(key), body)
            )

    def connection_remappings(self, key: str) -> dict[str, str]:
        """Source -> target remappings activation uses."""
        items = remapping_list(self.get_settings(key))
        return {
            str(r["source"]): str(r["target"])
            for r in (items if isinstance(items, list) else [])
            if isinstance(r, dict) and r.get("source") and r.get("target")
        }

    # -- exported bundles (design) -------------------------------------------------------------
    def exported_item(self, meta: dict[str, Any]) -> dict[str, Any]:
        """One item of GET …/bundles/exported (``state`` BUILDING while a background export runs)."""
        manifest = meta.get("manifest", {})
        item: dict[str, Any] = {
            "bundleId": meta["bundleId"],
            "projectKey": meta["projectKey"],
            "exportedOn": meta.get("exportedOn", 0),
            "exportedBy": meta.get("exportedBy", "admin"),
            "releaseNotes": meta.get("releaseNotes", ""),
            "size": meta.get("size", 0),
            "state": "BUILDING" if meta.get("pending") else "BUILT",
            "exportManifest": {
                "exportUserInfo": {
                    "exportedOn": meta.get("exportedOn", 0),
                    "exportedBy": {"login": meta.get("exportedBy", "admin")},
                },
                "originalProjectKey": meta["projectKey"],
                "releaseNotes": meta.get("releaseNotes", ""),
                "requiredConnections": manifest.get("requiredConnections", []),
            },
        }
        if meta.get("pending"):
            item["futureItem"] = {"jobId": f"export-{meta['bundleId']}", "alive": True}
        return item

    def export_bundle(self, key: str, bundle_id: str, release_notes: str | None) -> dict[str, Any]:
        """PUT /projects/{key}/bundles/exported/{id}: export (409 if the id exists)."""
        self.require_role("design", "Exporting a bundle")
        self.require_project(key)
        store = self.store
        project_dir = store.design_project_dir(key)
        check_id(bundle_id, "bundle id")
        out_dir = store.exported_dir(key)
        meta_path = out_dir / f"{bundle_id}.json"
        with store.lock:
            if meta_path.exists():
                raise SimError(
                    409,
                    f"Bundle already exists: bundle '{bundle_id}' was already exported for project '{key}'",
                    code="ERR_BUNDLE_ALREADY_EXISTS",
                )
            # reserve the id so a concurrent export of the same id fails too
            reserved = {"bundleId": bundle_id, "projectKey": key, "exportedOn": 0, "pending": True}
            write_json(meta_path, reserved)
        dialect = self.dialect
        try:
            time.sleep(dialect.background_seconds)  # the work a large project's export takes
            manifest = bundles.export_project(
                project_dir,
                store.project_meta(project_dir, key),
                bundle_id,
                release_notes,
                "admin",
                out_dir / f"{bundle_id}.zip",
                layout=dialect.archive_layout,
            )
        except BaseException:
            meta_path.unlink(missing_ok=True)
            raise
        meta = {
            "bundleId": bundle_id,
            "projectKey": key,
            "exportedOn": manifest["exportedOn"],
            "exportedBy": manifest["exportedBy"],
            "releaseNotes": manifest["releaseNotes"],
            "size": (out_dir / f"{bundle_id}.zip").stat().st_size,
            "manifest": {k: v for k, v in manifest.items() if k != "files"},
        }
        write_json(meta_path, meta)
        return self.exported_item(meta)

    def list_exported(self, key: str) -> list[dict[str, Any]]:
        """GET …/bundles/exported: done bundles, plus (background dialect) those still building."""
        self.require_role("design", "Listing exported bundles")
        self.require_project(key)
        show_pending = self.dialect.background_seconds > 0
        return [
            self.exported_item(m)
            for m in self.store.exported_bundles(key)
            if show_pending or not m.get("pending")
        ]

    def exported_zip(self, key: str, bundle_id: str) -> Path:
        """The archive of a finished export (404 while building or absent)."""
        self.require_project(key)
        store = self.store
        check_id(bundle_id, "bundle id")
        meta = read_json(store.exported_dir(key) / f"{bundle_id}.json")
        path = store.exported_dir(key) / f"{bundle_id}.zip"
        if not meta or meta.get("pending") or not path.is_file():
            raise not_found(f"Bundle '{bundle_id}' of project '{key}'", code="ERR_BUNDLE_NOT_FOUND")
        return path

    def delete_exported(self, key: str, bundle_id: str) -> dict[str, Any]:
        """DELETE …/bundles/exported/{id}."""
        self.require_role("design", "Deleting an exported bundle")
        path = self.exported_zip(key, bundle_id)
        with self.store.lock:
            path.unlink(missing_ok=True)
            (self.store.exported_dir(key) / f"{bundle_id}.json").unlink(missing_ok=True)
        return {"deleted": bundle_id}

    # -- imported bundles (automation) ---------------------------------------------------------
    def _import_archive(self, key: str, archive: Path, create: bool) -> dict[str, Any]:
        store = self.store
        manifest = bundles.read_manifest(archive)
        bundle_id = check_id(str(manifest["bundleId"]), "bundle id")
        with store.lock:
            exists = store.project_exists(key)
            if create and exists:
                raise SimError(
                    409, f"Project '{key}' already exists on this node", code="ERR_PROJECT_ALREADY_EXISTS"
                )
            if not create and not exists:
                raise self.missing_project(key)
            target = store.imported_dir(key, bundle_id)
            if (target / "meta.json").exists():
                raise SimError(
                    409,
                    f"Bundle '{bundle_id}' is already imported in project '{key}'",
                    code="ERR_BUNDLE_ALREADY_IMPORTED",
                )
            if create:
                store.save_auto_project(key, new_auto_project(key, manifest))
        try:
            bundles.unpack(archive, target / "content")
        except BaseException:
            bundles.remove_tree(target)
            if create:
                bundles.remove_tree(store.auto_dir(key))
            raise
        meta = {
            "bundleId": bundle_id,
            "projectKey": key,
            "importedOn": now_ms(),
            "exportedOn": manifest.get("exportedOn", 0),
            "exportedBy": manifest.get("exportedBy", ""),
            "releaseNotes": manifest.get("releaseNotes", ""),
            "originalProjectKey": manifest.get("projectKey"),
            "requiredConnections": list(manifest.get("requiredConnections") or []),
        }
        write_json(target / "meta.json", meta)
        return meta

    def project_from_bundle(self, archive: Path) -> dict[str, Any]:
        """POST /projectsFromBundle/: a new project from an uploaded bundle (imported, not activated)."""
        self.require_role("automation", "Creating a project from a bundle")
        manifest = bundles.read_manifest(archive)
        key = check_id(str(manifest["projectKey"]), "project key")
        meta = self._import_archive(key, archive, create=True)
        return {"projectKey": key, "bundleId": meta["bundleId"], "messages": [], "success": True}

    def import_bundle(self, key: str, archive: Path) -> dict[str, Any]:
        """POST …/bundles/imported/actions/importFromStream."""
        self.require_role("automation", "Importing a bundle")
        self.require_project(key)
        meta = self._import_archive(key, archive, create=False)
        return {"projectKey": key, "bundleId": meta["bundleId"]}

    def imported_item(self, meta: dict[str, Any]) -> dict[str, Any]:
        """One item of GET …/bundles/imported: nested fields as the DSS UI reads them (or flat)."""
        if self.dialect.imported_fields == "flat":
            return dict(meta)
        nested = {k: v for k, v in meta.items() if k not in ("importedOn", "exportedOn", "exportedBy")}
        nested["importState"] = {"importedOn": meta.get("importedOn", 0)}
        nested["exportManifest"] = {
            "exportUserInfo": {
                "exportedOn": meta.get("exportedOn", 0),
                "exportedBy": {"login": meta.get("exportedBy", "")},
            },
            "originalProjectKey": meta.get("originalProjectKey"),
            "requiredConnections": meta.get("requiredConnections", []),
        }
        return nested

    def list_imported(self, key: str) -> list[dict[str, Any]]:
        """GET …/bundles/imported, oldest import first."""
        self.require_role("automation", "Listing imported bundles")
        self.require_project(key)
        return [self.imported_item(m) for m in self.store.imported_bundles(key)]

    def imported_meta(self, key: str, bundle_id: str) -> dict[str, Any]:
        """The bookkeeping of one imported bundle (404 if absent)."""
        self.require_project(key)
        meta = read_json(self.store.imported_dir(key, bundle_id) / "meta.json")
        if not meta:
            raise not_found(f"Imported bundle '{bundle_id}' of project '{key}'", code="ERR_BUNDLE_NOT_FOUND")
        return dict(meta)

    def preload(self, key: str, bundle_id: str) -> dict[str, Any]:
        """POST …/imported/{id}/actions/preload: builds code envs (slow / failing in that dialect)."""
        self.require_role("automation", "Preloading a bundle")
        self.imported_meta(key, bundle_id)
        dialect = self.dialect
        time.sleep(dialect.preload_seconds)
        env = dialect.preload_fail_code_env
        if env:
            message = (
                f"Failed to build code env '{env}': pip install of the requirements failed "
                "(Could not find a version that satisfies the requirement scikit-learn==0.0.1)"
            )
            return {
                "anyMessage": True,
                "success": False,
                "error": True,
                "messages": [
                    {"severity": "ERROR", "isFatal": True, "code": "ERR_CODEENV_INSTALL_FAILED",
                     "title": f"Code env {env} could not be built", "message": message},
                ],
                "bundleId": bundle_id,
            }  # fmt: skip
        return {"anyMessage": False, "success": True, "messages": [], "bundleId": bundle_id}

    def activate(self, key: str, bundle_id: str, body: Any) -> dict[str, Any]:
        """POST …/imported/{id}/actions/activate: validate, check connections, switch once, report."""
        self.require_role("automation", "Activating a bundle")
        meta = self.imported_meta(key, bundle_id)
        scenarios_on = activation_options(body)
        remaps = self.connection_remappings(key)
        available = self.store.connections()
        required = list(meta.get("requiredConnections", []))
        missing = [(c, str(remaps.get(c, c))) for c in required if remaps.get(c, c) not in available]
        if missing:
            return self._refuse(bundle_id, *missing[0])
        time.sleep(self.dialect.background_seconds)  # a large project's activation
        previous = self.store.switch_active_bundle(
            key, bundle_id, envstate.scenarios_option(self.dialect, scenarios_on)
        )
        envstate.after_activation(self.dialect, self.store, key)
        messages = [
            {
                "severity": "INFO",
                "isFatal": False,
                "code": "INFO_BUNDLE_CONNECTION_REMAPPED",
                "title": "Connection remapped",
                "message": f"Connection '{source}' of the bundle is remapped to '{target}'",
            }
            for source, target in sorted(remaps.items())
            if source in required
        ]
        extra = self.store.node_config().get("activationMessages") or []  # test knob: extra report entries
        messages += [dict(m) for m in extra if isinstance(m, dict)]
        return report(bundle_id, previous, messages)

    def _refuse(self, bundle_id: str, source: str, target: str) -> dict[str, Any]:
        via = f" (remapped from '{source}')" if source != target else ""
        message = (
            f"Connection '{target}'{via} does not exist on this node: create it or remap "
            f"'{source}' in the project's activation settings ({REMAPPING_KEY})"
        )
        if self.dialect.activation_refusal == "error":
            raise SimError(400, message, code=MISSING_CONNECTION)
        fatal = {"severity": "ERROR", "isFatal": True, "code": MISSING_CONNECTION,
                 "title": "Missing connection", "message": message}  # fmt: skip
        out = report(bundle_id, None, [fatal])
        out["success"] = False
        return out

    def delete_imported(self, key: str, bundle_id: str) -> dict[str, Any]:
        """DELETE …/bundles/imported/{id} (not the active one)."""
        self.require_role("automation", "Deleting an imported bundle")
        store = self.store
        self.imported_meta(key, bundle_id)
        with store.lock:
            if store.auto_project(key).get("activeBundleId") == bundle_id:
                raise bad_request(
                    f"Bundle '{bundle_id}' is the active bundle of '{key}': activate another one first",
                    code="ERR_BUNDLE_IS_ACTIVE",
                )
            bundles.remove_tree(store.imported_dir(key, bundle_id))
        return {"deleted": bundle_id}


def new_auto_project(key: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """The bookkeeping of a project just created from a bundle (no bundle active yet)."""
    return {
        "projectKey": key,
        "name": manifest.get("projectName", key),
        "owner": "admin",
        "createdOn": now_ms(),
        "activeBundleId": None,
        "variables": {"standard": {}, "local": {}},
        "scenarioActive": {},
    }


def activation_options(body: Any) -> dict[str, Any]:
    """``scenariosActiveOnActivation`` of an activation body (400 on anything else)."""
    if not isinstance(body, dict):
        raise bad_request("Activation options must be a JSON object", code="ERR_INVALID_JSON")
    unknown = sorted(set(body) - ACTIVATE_FIELDS)
    if unknown:
        raise bad_request(
            f"Unknown activation option(s) {', '.join(unknown)}: the body may only hold "
            "scenariosActiveOnActivation (connection remappings belong in the project's settings, "
            f"{REMAPPING_KEY})",
            code="ERR_INVALID_ACTIVATION_OPTIONS",
        )
    scenarios_on = body.get("scenariosActiveOnActivation") or {}
    if not isinstance(scenarios_on, dict):
        raise bad_request("scenariosActiveOnActivation must be an object")
    return scenarios_on


def report(bundle_id: str, previous: str | None, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """An activation report as DSS answers it."""
    severities = {str(m.get("severity", "INFO")).upper() for m in messages}
    return {
        "anyMessage": bool(messages),
        "success": True,
        "warning": "WARNING" in severities,
        "error": "ERROR" in severities,
        "fatal": any(bool(m.get("isFatal")) for m in messages),
        "messages": messages,
        "bundleId": bundle_id,
        "previousBundleId": previous,
    }
