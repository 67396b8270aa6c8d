"""`mlcd fetch --bundle-id ID [--sha256 HEX]`: download a published bundle and verify where it came from.

The metadata file next to the archive must be signed with the signing key
(``signing.key_env``; see `mlcd publish`), or the caller pins the archive with
``--sha256`` taken from the build that produced it: the repository alone can
never choose what is deployed. Only then is the archive downloaded, and written
to ``<out-dir>/bundles/<id>.zip`` only when its sha256 and size match. Without a
run record for this bundle, creates one from the metadata so that `mlcd deploy`
can proceed on this machine; a different archive than the run record's clears
its approvals.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from mlcd.artifacts import ArtifactRepository, IntegrityError, TransferProgress
from mlcd.commands.context import StageContext
from mlcd.commands.options import BundleIdOptions, FetchOptions
from mlcd.commands.result import StageResult
from mlcd.errors import ConfigError, InputError
from mlcd.runrecord import RunRecord
from mlcd.signing import metadata_problem, signing_keys
from mlcd.stages.bundle import check_bundle_id
from mlcd.stages.publish import repository

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
APPROVAL_FIELDS = ("approval", "approvedBy", "approvedSha256")


def trusted_sha256(ctx: StageContext, bundle_id: str, meta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The sha256 to accept for ``bundle_id`` and how it was trusted (``provenance``), or raise.

    ``--sha256`` pins it; else the metadata must carry a valid signature under the
    signing key. IntegrityError / InputError (exit 2) before anything is downloaded.
    """
    cfg = ctx.config()
    pin = str(ctx.opts(FetchOptions).sha256 or "").strip().lower()
    stored = str(meta.get("sha256") or "")
    if pin:
        if not SHA256_RE.match(pin):
            raise ConfigError("--sha256 is not 64 hex digits", "pass the sha256 the publishing build printed")
        if stored != pin:
            raise IntegrityError(
                f"bundle {bundle_id} in the repository has sha256 {stored[:12]}…, "
                f"not the pinned {pin[:12]}…; nothing was downloaded",
                "the stored bundle is not the one that build produced: publish it again from that build",
            )
        return pin, {"trustedBy": "pinned sha256"}
    keys = signing_keys(cfg)
    hint = (
        f"publish it again from the build that produced it, or pass --sha256 from that build "
        f"(fetch --bundle-id {bundle_id} --sha256 <hex>)"
    )
    if not keys.configured:
        raise InputError(
            f"cannot check where bundle {bundle_id} came from: mlcd.yaml names no signing key; "
            "nothing was downloaded",
            f"add signing: {{key_env: MLCD_SIGNING_KEY}} to {cfg.source_path} (docs/security.md), or {hint}",
        )
    problem = metadata_problem(meta, keys)
    if problem is None and meta.get("project") != cfg.project:
        problem = f"it is signed for project {meta.get('project')}, mlcd.yaml deploys {cfg.project}"
    if problem:
        raise IntegrityError(f"bundle {bundle_id} refused: {problem}; nothing was downloaded", hint)
    signature = meta.get("signature") or {}
    return stored, {"trustedBy": "signed metadata", "keyId": signature.get("keyId")}


def _download(
    ctx: StageContext, repo: ArtifactRepository, bundle_id: str
) -> tuple[dict[str, Any], int, str, dict[str, Any]]:
    """Read and trust the metadata, then download and check the archive: (meta, size, sha, provenance)."""
    cfg = ctx.config()
    dest = ctx.out_dir / "bundles" / f"{bundle_id}.zip"
    ctx.progress(f"reading metadata {repo.metadata_url(bundle_id)}")
    meta = repo.get_metadata(bundle_id)
    if meta is None:
        raise InputError(
            f"bundle {bundle_id} of project {cfg.project} is not in the artifact repository",
            "check the bundle id, or run `mlcd publish` for it first",
        )
    if meta.get("bundleId") not in (None, bundle_id):
        raise IntegrityError(
            f"metadata of {bundle_id} describes bundle {meta.get('bundleId')}",
            "publish the bundle again",
        )
    expected, provenance = trusted_sha256(ctx, bundle_id, meta)
    ctx.progress(f"downloading {repo.archive_url(bundle_id)} ({provenance['trustedBy']})")
    progress = TransferProgress(ctx.progress, f"download {bundle_id}")
    size, sha = repo.download(bundle_id, dest, progress=progress)
    if sha != expected or (meta.get("size") is not None and int(meta["size"]) != size):
        with contextlib.suppress(OSError):
            dest.unlink()
        raise IntegrityError(
            f"bundle {bundle_id} downloaded with sha256 {sha[:12]}… ({size} bytes), "
            f"but its metadata says {expected[:12]}… ({meta.get('size')} bytes)",
            "the stored archive is damaged or was replaced: publish the bundle again",
        )
    return meta, size, sha, provenance


def run(ctx: StageContext) -> StageResult:
    """Fetch and verify bundle ``--bundle-id``; create the run record if needed."""
    cfg = ctx.config()
    bundle_id = check_bundle_id(str(ctx.opts(BundleIdOptions).bundle_id), "--bundle-id")
    repo = repository(ctx)
    audit = ctx.audit()
    dest = ctx.out_dir / "bundles" / f"{bundle_id}.zip"
    try:
        with audit.action("fetch", node="artifact-repository", bundle_id=bundle_id) as detail:
            meta, size, sha, provenance = _download(ctx, repo, bundle_id)
            detail.update(size=size, sha256=sha, **provenance)
    finally:
        repo.close()
    ctx.progress(f"verified sha256 {sha}")
    created = False
    existing: RunRecord | None = None
    if RunRecord.exists(ctx.out_dir):
        with contextlib.suppress(InputError):
            existing = RunRecord.load(ctx.out_dir)
    if existing is not None and existing.bundle_id == bundle_id:
        if existing.sha256 != sha:
            cleared = _clear_approvals(existing)
            if cleared:
                ctx.progress(f"a different archive: approvals cleared ({', '.join(cleared)})")
        existing.update(archive=str(dest.resolve()), sha256=sha, size=size, provenance=provenance)
    else:
        if existing is not None:
            ctx.progress(f"replacing the run record of bundle {existing.bundle_id} with one for {bundle_id}")
        RunRecord.create(
            ctx.out_dir,
            bundleId=bundle_id,
            sha256=sha,
            size=size,
            archive=str(dest.resolve()),
            gitSha=meta.get("gitSha"),
            buildUrl=meta.get("buildUrl"),
            buildNumber=meta.get("buildNumber"),
            actor=ctx.actor,
            project=meta.get("project") or cfg.project,
            fetchedBy=ctx.actor,
            fetchedFromBuildUrl=ctx.build_url,
            provenance=provenance,
            published={
                "url": repo.archive_url(bundle_id),
                "metadataUrl": repo.metadata_url(bundle_id),
                "sha256": sha,
                "size": size,
                "verified": True,
                "publishedAt": meta.get("publishedAt"),
            },
        )
        created = True
    return StageResult(
        outcome="SUCCESS",
        message=f"bundle {bundle_id} fetched and verified ({size} bytes, {provenance['trustedBy']})"
        + ("; run record created" if created else ""),
        bundle_id=bundle_id,
        details={
            "sha256": sha,
            "size": size,
            "archive": str(dest),
            "runRecordCreated": created,
            "provenance": provenance,
        },
    )


def _clear_approvals(record: RunRecord) -> list[str]:
    """Remove every environment's approval from ``record`` (saved); return the environments cleared."""
    cleared = []
    for name, entry in (record.data.get("environments") or {}).items():
        if isinstance(entry, dict) and any(k in entry for k in APPROVAL_FIELDS):
            for k in APPROVAL_FIELDS:
                entry.pop(k, None)
            cleared.append(str(name))
    if cleared:
        record.save()
    return cleared
