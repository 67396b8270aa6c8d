"""The bundle archive: what it says about itself, and the checks before it may be deployed.

* the archive deployed is the one the run record names (same sha256, same bundle id);
* the bundle is of the project mlcd.yaml deploys;
* a bundle id already imported on a node is reused only for the same export.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from mlcd.bounded_zip import open_bounded_zip
from mlcd.errors import InputError

if TYPE_CHECKING:
    from mlcd.runrecord import RunRecord

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class BundleInfo:
    """What the local archive says about itself (its manifest and scenarios)."""

    bundle_id: str
    project_key: str
    required_connections: tuple[str, ...]
    scenarios: dict[str, dict[str, Any]]
    exported_on: Any = None
    # False for an archive whose layout mlcd does not recognise (no root manifest.json): its facts then
    # come from the run record and the DSS API, and the archive pre-checks are skipped (activation's
    # report is the check). Real DSS archives are not publicly documented (docs/stand-in.md).
    layout_known: bool = True


def file_sha256(path: Path) -> str:
    """sha256 (hex) of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_bundle(archive: Path, bundle_id: str = "") -> BundleInfo:
    """Read ``manifest.json`` and ``project/scenarios/*.json`` of a bundle zip (InputError if not a zip).

    A zip without a root ``manifest.json`` is a layout mlcd does not know: it is returned as
    opaque (``layout_known=False``, id ``bundle_id``), never refused for its layout alone.
    """
    try:
        with open_bounded_zip(archive) as zf:
            if "manifest.json" not in zf.namelist():
                return BundleInfo(bundle_id, "", (), {}, layout_known=False)
            manifest = json.loads(zf.read("manifest.json"))
            scenarios: dict[str, dict[str, Any]] = {}
            for name in zf.namelist():
                p = PurePosixPath(name)
                if p.parent == PurePosixPath("project/scenarios") and p.suffix == ".json":
                    try:
                        definition = json.loads(zf.read(name))
                    except ValueError:
                        continue
                    if isinstance(definition, dict):
                        scenarios[str(definition.get("id") or p.stem)] = definition
    except (OSError, zipfile.BadZipFile, KeyError, ValueError):
        raise InputError(
            f"{archive} is not a readable bundle archive (no valid manifest.json)",
            "run `mlcd bundle` or `mlcd fetch` again to get a good archive",
        ) from None
    if not isinstance(manifest, dict) or not manifest.get("bundleId"):
        raise InputError(f"{archive} has a manifest without a bundleId", "re-export the bundle")
    required = manifest.get("requiredConnections") or []
    return BundleInfo(
        bundle_id=str(manifest["bundleId"]),
        project_key=str(manifest.get("projectKey") or ""),
        required_connections=tuple(str(c) for c in required if c),
        scenarios=scenarios,
        exported_on=manifest.get("exportedOn"),
    )


def archive_path(record: RunRecord, explicit: str | None) -> Path:
    """The archive to deploy: ``--archive`` or the run record's."""
    return Path(explicit) if explicit else record.archive


def check_archive(record: RunRecord, archive: Path) -> BundleInfo:
    """Refuse an archive that is missing, or whose sha256 or bundle id differ from the run record."""
    if not archive.is_file():
        raise InputError(
            f"bundle archive {archive} does not exist",
            "run `mlcd bundle` or `mlcd fetch --bundle-id ...` first, or pass --archive",
        )
    actual = file_sha256(archive)
    if record.sha256 and actual != record.sha256:
        raise InputError(
            f"bundle archive {archive} has sha256 {actual[:12]}… but the run record expects "
            f"{record.sha256[:12]}… for bundle {record.bundle_id}; nothing was deployed",
            "deploy the exact archive this run built (re-run `mlcd fetch` if it was altered)",
        )
    if not record.sha256:
        raise InputError(
            f"the run record has no sha256 for bundle {record.bundle_id}; "
            "refusing to deploy unverified bytes",
            "run `mlcd bundle` or `mlcd fetch` again",
        )
    info = read_bundle(archive, record.bundle_id)
    if info.bundle_id != record.bundle_id:
        raise InputError(
            f"archive {archive} holds bundle {info.bundle_id}, the run record names {record.bundle_id}",
            "pass the archive of this run's bundle",
        )
    return info


def check_project(bundle: BundleInfo, project: str) -> None:
    """Refuse a bundle of another project than the one mlcd.yaml deploys (InputError)."""
    if bundle.project_key and bundle.project_key != project:
        raise InputError(
            f"bundle {bundle.bundle_id} is of project {bundle.project_key}, mlcd.yaml deploys {project}",
            "use the archive of this project",
        )


def same_content(bundle: BundleInfo, imported: dict[str, Any]) -> bool:
    """Whether an imported bundle with this id is this archive (export time compared when both say it)."""
    theirs = imported.get("exportedOn")
    if bundle.exported_on in (None, "", 0) or theirs in (None, "", 0):
        return True
    return bool(str(theirs) == str(bundle.exported_on))
