"""Bundle archives: export a project folder to a zip, validate and unpack an uploaded one.

A bundle is a zip holding ``manifest.json`` and the project content under
``project/`` (layout "mlcd"), or, in the "opaque" dialect,
``_dss/bundle-info.json`` and ``content/``: a layout mlcd does not know, as a
real DSS archive may be. Files are copied in fixed-size chunks, so memory use does not
depend on the archive's size.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

from mlcd.sim.errors import SimError
from mlcd.sim.store import now_ms

CHUNK = 1024 * 1024
STORE_ABOVE = 16 * 1024 * 1024  # larger files are stored, not deflated (keeps export fast)
CORRUPT = "ERR_BUNDLE_INVALID_ARCHIVE"
#: layout name -> (manifest member, folder of the project content)
LAYOUTS = {"mlcd": ("manifest.json", "project"), "opaque": ("_dss/bundle-info.json", "content")}


def _copy_hashing(src: Any, dst: Any) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while True:
        chunk = src.read(CHUNK)
        if not chunk:
            break
        digest.update(chunk)
        dst.write(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def export_project(
    project_dir: Path,
    project_meta: dict[str, Any],
    bundle_id: str,
    release_notes: str | None,
    exported_by: str,
    dest: Path,
    layout: str = "mlcd",
) -> dict[str, Any]:
    """Write the bundle zip of ``project_dir`` to ``dest`` (atomically, in ``layout``); its manifest."""
    manifest_name, content_dir = LAYOUTS[layout]
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".export-", suffix=".zip", dir=dest.parent)
    os.close(fd)
    files: dict[str, dict[str, Any]] = {}
    try:
        with zipfile.ZipFile(tmp_name, "w", allowZip64=True) as zf:
            for path in sorted(p for p in project_dir.rglob("*") if p.is_file()):
                rel = path.relative_to(project_dir).as_posix()
                arcname = f"{content_dir}/{rel}"
                if rel == "variables.json":
                    data = json.loads(path.read_text(encoding="utf-8") or "{}")
                    payload = json.dumps({"standard": data.get("standard") or {}, "local": {}}, indent=1)
                    raw = payload.encode()
                    zf.writestr(arcname, raw, compress_type=zipfile.ZIP_DEFLATED)
                    files[rel] = {"sha256": hashlib.sha256(raw).hexdigest(), "size": len(raw)}
                    continue
                size = path.stat().st_size
                info = zipfile.ZipInfo.from_file(path, arcname)
                info.compress_type = zipfile.ZIP_STORED if size > STORE_ABOVE else zipfile.ZIP_DEFLATED
                with path.open("rb") as src, zf.open(info, "w", force_zip64=size > 2**31) as out:
                    sha, written = _copy_hashing(src, out)
                files[rel] = {"sha256": sha, "size": written}
            manifest = {
                "bundleId": bundle_id,
                "projectKey": project_meta["projectKey"],
                "projectName": project_meta.get("name", project_meta["projectKey"]),
                "exportedOn": now_ms(),
                "exportedBy": exported_by,
                "releaseNotes": release_notes or "",
                "requiredConnections": list(project_meta.get("connections") or []),
                "files": files,
            }
            zf.writestr(manifest_name, json.dumps(manifest, indent=1), compress_type=zipfile.ZIP_DEFLATED)
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return manifest


def _member_target(name: str, content_dir: str = "project") -> str | None:
    """The path under ``content_dir/`` a zip member unpacks to (None if not project content)."""
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or "\\" in name:
        raise SimError(400, f"Bundle archive has an unsafe entry '{name[:100]}'", code=CORRUPT)
    if len(pure.parts) < 2 or pure.parts[0] != content_dir:
        return None
    return PurePosixPath(*pure.parts[1:]).as_posix()


def _layout_of(zf: zipfile.ZipFile) -> tuple[str, str]:
    names = set(zf.namelist())
    for manifest_name, content_dir in LAYOUTS.values():
        if manifest_name in names:
            return manifest_name, content_dir
    raise SimError(400, "Bundle archive has no manifest.json", code=CORRUPT)


def read_manifest(archive: Path) -> dict[str, Any]:
    """Open ``archive`` and return its manifest (either layout); 400 if it is not a valid bundle."""
    try:
        with zipfile.ZipFile(archive) as zf:
            manifest_name, _ = _layout_of(zf)
            raw = zf.read(manifest_name)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise SimError(
            400, f"Bundle archive is truncated or corrupt ({type(exc).__name__})", code=CORRUPT
        ) from None
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise SimError(400, "Bundle manifest.json is not valid JSON", code=CORRUPT) from None
    if not isinstance(manifest, dict) or not manifest.get("bundleId") or not manifest.get("projectKey"):
        raise SimError(400, "Bundle manifest.json lacks bundleId or projectKey", code=CORRUPT)
    return manifest


def unpack(archive: Path, dest_content: Path) -> dict[str, Any]:
    """Check every member (CRC and manifest sha256) and unpack ``project/`` to ``dest_content``.

    Unpacks into a temporary folder next to ``dest_content`` and renames it at
    the end, so a failed unpack leaves nothing behind. Returns the manifest.
    """
    manifest = read_manifest(archive)
    expected: dict[str, Any] = manifest.get("files") or {}
    dest_content.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest_content.parent))
    try:
        seen: set[str] = set()
        with zipfile.ZipFile(archive) as zf:
            _, content_dir = _layout_of(zf)
            for info in zf.infolist():
                target = _member_target(info.filename, content_dir)
                if target is None or info.is_dir():
                    continue
                out_path = tmp_dir / target
                out_path.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, out_path.open("wb") as out:
                    sha, _ = _copy_hashing(src, out)
                entry = expected.get(target)
                want = entry.get("sha256") if isinstance(entry, dict) else None
                if want and want != sha:
                    raise SimError(400, f"Bundle file '{target}' does not match its sha256", code=CORRUPT)
                seen.add(target)
        missing = sorted(set(expected) - seen)
        if missing:
            raise SimError(400, f"Bundle archive lacks '{missing[0]}' listed in its manifest", code=CORRUPT)
        if dest_content.exists():
            shutil.rmtree(dest_content)
        os.replace(tmp_dir, dest_content)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise SimError(
            400, f"Bundle archive is truncated or corrupt ({type(exc).__name__})", code=CORRUPT
        ) from None
    finally:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir, ignore_errors=True)
    return manifest


def remove_tree(path: Path) -> None:
    """Delete a folder if present."""
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path)
