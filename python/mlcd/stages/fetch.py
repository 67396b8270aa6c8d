"""`mlcd fetch --bundle-id ID`: download a published bundle and verify it against its metadata.

Writes ``<out-dir>/bundles/<id>.zip`` only when its sha256 and size match the
metadata file next to it in the repository. Without a run record for this bundle,
creates one from the metadata so that `mlcd deploy` can proceed on this machine.
"""

from __future__ import annotations

import contextlib

from mlcd.artifacts import IntegrityError, TransferProgress
from mlcd.commands.context import StageContext
from mlcd.commands.options import BundleIdOptions
from mlcd.commands.result import StageResult
from mlcd.errors import InputError
from mlcd.runrecord import RunRecord
from mlcd.stages.bundle import check_bundle_id
from mlcd.stages.publish import repository


def run(ctx: StageContext) -> StageResult:
    """Fetch and verify bundle ``--bundle-id``; create the run record if needed."""
    cfg = ctx.config()
    bundle_id = check_bundle_id(str(ctx.opts(BundleIdOptions).bundle_id), "--bundle-id")
    repo = repository(ctx)
    audit = ctx.audit()
    dest = ctx.out_dir / "bundles" / f"{bundle_id}.zip"
    try:
        with audit.action("fetch", node="artifact-repository", bundle_id=bundle_id) as detail:
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
            expected = str(meta["sha256"])
            ctx.progress(f"downloading {repo.archive_url(bundle_id)}")
            size, sha = repo.download(
                bundle_id, dest, progress=TransferProgress(ctx.progress, f"download {bundle_id}")
            )
            detail.update(size=size, sha256=sha)
            if sha != expected or (meta.get("size") is not None and int(meta["size"]) != size):
                with contextlib.suppress(OSError):
                    dest.unlink()
                raise IntegrityError(
                    f"bundle {bundle_id} downloaded with sha256 {sha[:12]}… ({size} bytes), "
                    f"but its metadata says {expected[:12]}… ({meta.get('size')} bytes)",
                    "the stored archive is damaged or was replaced: publish the bundle again",
                )
    finally:
        repo.close()
    ctx.progress(f"verified sha256 {sha}")
    created = False
    existing: RunRecord | None = None
    if RunRecord.exists(ctx.out_dir):
        with contextlib.suppress(InputError):
            existing = RunRecord.load(ctx.out_dir)
    if existing is not None and existing.bundle_id == bundle_id:
        existing.update(archive=str(dest.resolve()), sha256=sha, size=size)
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
        message=f"bundle {bundle_id} fetched and verified ({size} bytes)"
        + ("; run record created" if created else ""),
        bundle_id=bundle_id,
        details={"sha256": sha, "size": size, "archive": str(dest), "runRecordCreated": created},
    )
