"""`mlcd publish`: store this run's bundle archive in the artifact repository and verify it.

PUT ``<url>/<project>/<bundleId>/<bundleId>.zip`` with ``X-Checksum-Sha256/Sha1/Md5``
headers (computed in one pass before the upload; the body is streamed), then PUT
``<bundleId>.json`` metadata, then read the archive back and compare its sha256.
A bundle already published with the same sha256 is verified and reported as NOOP;
one published with different bytes is refused (published bundles are immutable).

With a signing key (``signing.key_env``) the metadata carries ``signature``: an
HMAC-SHA256 over bundle id, project, sha256, size and the creation facts, which
`mlcd fetch` verifies (the repository never holds the key, so it cannot forge it).
A same-bytes bundle whose stored metadata is not validly signed gets signed metadata.
"""

from __future__ import annotations

from typing import Any

from mlcd.artifacts import ArtifactRepository, Checksums, IntegrityError, TransferProgress, checksums
from mlcd.commands.context import StageContext
from mlcd.commands.options import BundleIdOptions
from mlcd.commands.result import StageResult
from mlcd.errors import ConfigError, InputError
from mlcd.runrecord import RunRecord, utc_now_iso
from mlcd.signing import metadata_problem, sign_metadata, signing_keys
from mlcd.stages.bundle import check_bundle_id


def repository(ctx: StageContext) -> ArtifactRepository:
    """The configured artifact repository; ConfigError when mlcd.yaml has none."""
    cfg = ctx.config()
    if cfg.artifact_repository is None:
        raise ConfigError(
            f"no artifact_repository in {cfg.source_path}",
            "add artifact_repository: {url: ..., username_env: ..., password_env: ...} "
            "(see docs/configuration.md)",
        )
    return ArtifactRepository(cfg.artifact_repository, cfg.project)


def signed_metadata(
    ctx: StageContext, record: RunRecord, bundle_id: str, sums: Checksums, key: bytes | None
) -> dict[str, Any]:
    """The ``<bundleId>.json`` metadata, signed under ``key`` (unsigned, with a warning, without one)."""
    metadata: dict[str, Any] = {
        "bundleId": bundle_id,
        "project": ctx.config().project,
        "sha256": sums.sha256,
        "sha1": sums.sha1,
        "md5": sums.md5,
        "size": sums.size,
        "gitSha": record.data.get("gitSha"),
        "buildUrl": record.data.get("buildUrl"),
        "buildNumber": record.data.get("buildNumber"),
        "createdAt": record.data.get("createdAt"),
        "publishedAt": utc_now_iso(),
        "publishedBy": ctx.actor,
        "releaseNotes": record.data.get("releaseNotes"),
    }
    if key is not None:
        metadata["signature"] = sign_metadata(metadata, key)
    else:
        ctx.progress(
            "WARNING publishing unsigned metadata: mlcd.yaml names no signing key "
            "(signing.key_env), so `mlcd fetch` of this bundle needs --sha256"
        )
    return metadata


def _store_metadata(
    ctx: StageContext,
    repo: ArtifactRepository,
    record: RunRecord,
    bundle_id: str,
    sums: Checksums,
    existing: dict[str, Any] | None,
) -> None:
    """PUT the (signed) metadata when there is none, or when the stored one is not validly signed."""
    keys = signing_keys(ctx.config())
    unsigned = existing is not None and keys.current is not None and metadata_problem(existing, keys)
    if existing is not None and not unsigned:
        return
    if unsigned:
        ctx.progress(f"the stored metadata of {bundle_id} is not validly signed; signing it")
    repo.put_metadata(bundle_id, signed_metadata(ctx, record, bundle_id, sums, keys.current))


def run(ctx: StageContext) -> StageResult:
    """Upload, describe and verify the bundle archive; record it in the run record and audit trail."""
    cfg = ctx.config()
    record = RunRecord.load(ctx.out_dir)
    bundle_id = record.bundle_id
    archive = record.archive
    wanted = ctx.opts(BundleIdOptions).bundle_id
    if wanted and wanted != bundle_id:
        bundle_id = check_bundle_id(str(wanted), "--bundle-id")
        archive = ctx.out_dir / "bundles" / f"{bundle_id}.zip"
    if not archive.is_file():
        raise InputError(
            f"bundle archive {archive} not found",
            "run `mlcd bundle` (or `mlcd fetch`) in this workspace first",
        )
    repo = repository(ctx)
    audit = ctx.audit()
    ctx.progress(f"computing checksums of {archive.name}")
    sums = checksums(archive)
    if bundle_id == record.bundle_id and record.sha256 and sums.sha256 != record.sha256:
        raise IntegrityError(
            f"archive {archive} has sha256 {sums.sha256[:12]}…, the run record says {record.sha256[:12]}…",
            "the file changed since `mlcd bundle`; run `mlcd bundle` again",
        )
    try:
        with audit.action(
            "publish", node="artifact-repository", bundle_id=bundle_id, sha256=sums.sha256
        ) as detail:
            detail["url"] = repo.archive_url(bundle_id)
            existing = repo.get_metadata(bundle_id)
            if existing is not None and existing.get("sha256") != sums.sha256:
                raise IntegrityError(
                    f"bundle {bundle_id} is already published with different content "
                    f"(sha256 {str(existing.get('sha256'))[:12]}…)",
                    "published bundles are immutable: build a new bundle (mlcd bundle) instead",
                )
            noop = existing is not None
            if noop:
                ctx.progress(f"bundle {bundle_id} is already published with the same sha256; verifying it")
            else:
                ctx.progress(f"uploading {sums.size} bytes to {repo.archive_url(bundle_id)}")
                repo.put_archive(
                    archive, bundle_id, sums, progress=TransferProgress(ctx.progress, f"upload {bundle_id}")
                )
            _store_metadata(ctx, repo, record, bundle_id, sums, existing)
            ctx.progress("reading the archive back to verify it")
            size, sha = repo.remote_sha256(bundle_id)
            if sha != sums.sha256 or size != sums.size:
                raise IntegrityError(
                    f"bundle {bundle_id} read back from the artifact repository has sha256 {sha[:12]}… "
                    f"({size} bytes), expected {sums.sha256[:12]}… ({sums.size} bytes)",
                    "check the repository (proxy rewriting, storage errors) and publish again",
                )
            detail.update(verified=True, noop=noop, size=size, signed=cfg.signing.key_env is not None)
    finally:
        repo.close()
    published = {
        "url": repo.archive_url(bundle_id),
        "metadataUrl": repo.metadata_url(bundle_id),
        "sha256": sums.sha256,
        "size": sums.size,
        "verified": True,
        "publishedAt": utc_now_iso(),
    }
    if bundle_id == record.bundle_id:
        record.update(published=published)
    return StageResult(
        outcome="NOOP" if noop else "SUCCESS",
        message=(
            f"bundle {bundle_id} was already published, verified"
            if noop
            else f"bundle {bundle_id} published and verified ({sums.size} bytes)"
        ),
        bundle_id=bundle_id,
        links={"archive": repo.archive_url(bundle_id), "metadata": repo.metadata_url(bundle_id)},
        details={"published": published},
    )
