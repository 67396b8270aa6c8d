"""`mlcd bundle`: export a bundle on the design node, download it with its sha256, start the run record.

The bundle id follows ``bundle.id_format`` (default
``{project}_{utc}_{git_sha}_b{build}``, utc = ``%Y%m%dT%H%M%SZ``): unique and
sortable, restricted to ``[A-Za-z0-9_.-]``. Release notes come from git (last
commit subject and the short log since the previous tag, bounded). The archive
goes to ``<out-dir>/bundles/<id>.zip``; the run record to ``<out-dir>/run.json``.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from mlcd import gitinfo
from mlcd.artifacts import TransferProgress
from mlcd.commands.context import StageContext
from mlcd.commands.options import BundleOptions
from mlcd.commands.result import StageResult
from mlcd.dss.errors import DSSConflict, DSSNotFound
from mlcd.errors import ConfigError, InputError
from mlcd.inputrules import BUNDLE_ID_RULE, bundle_id_problem
from mlcd.runrecord import RunRecord, utc_now_iso

PLACEHOLDERS = ("project", "utc", "git_sha", "build")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_part(value: str) -> str:
    """``value`` with characters not allowed in bundle ids replaced by ``-``."""
    return _UNSAFE.sub("-", value.strip()).strip("-") or "x"


def render_bundle_id(
    id_format: str, project: str, *, git_sha: str, build: str, utc: datetime | None = None
) -> str:
    """Render ``id_format``; ConfigError on an unknown placeholder or a resulting invalid id."""
    stamp = (utc or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    values = {"project": project, "utc": stamp, "git_sha": safe_part(git_sha), "build": safe_part(build)}
    try:
        bundle_id = id_format.format_map(values)
    except KeyError as exc:
        raise ConfigError(
            f"bundle.id_format uses unknown placeholder {{{exc.args[0]}}}",
            "use only " + ", ".join("{" + p + "}" for p in PLACEHOLDERS),
        ) from None
    except (ValueError, IndexError):
        raise ConfigError(
            "bundle.id_format is not a valid format string", "use e.g. {project}_{utc}_{git_sha}_b{build}"
        ) from None
    check_bundle_id(bundle_id, "bundle.id_format")
    return bundle_id


def check_bundle_id(bundle_id: str, source: str) -> str:
    """Return ``bundle_id`` if valid (``inputrules.bundle_id_problem``); ConfigError naming ``source``."""
    problem = bundle_id_problem(bundle_id)
    if problem:
        raise ConfigError(f"bundle id from {source} is invalid: {problem}", f"{source}: {BUNDLE_ID_RULE}")
    return bundle_id


def run(ctx: StageContext) -> StageResult:
    """Export, download and record a new bundle of the configured project."""
    cfg = ctx.config()
    args = ctx.opts(BundleOptions)
    key = cfg.project
    repo_dir = Path(args.config).resolve().parent
    git_sha = gitinfo.sanitize_sha(args.git_sha) if args.git_sha else gitinfo.short_sha(repo_dir)
    build = str(args.build_number) if args.build_number else "local"
    if args.bundle_id:
        bundle_id = check_bundle_id(str(args.bundle_id), "--bundle-id")
    else:
        bundle_id = render_bundle_id(cfg.bundle.id_format, key, git_sha=git_sha, build=build)
    notes: str | None = None
    if cfg.bundle.release_notes == "git":
        notes = gitinfo.release_notes(repo_dir)
        if ctx.build_url:
            notes += f"\n\nBuild: {ctx.build_url}"
    audit = ctx.audit()
    node = ctx.design_node()

    ctx.progress(f"exporting bundle {bundle_id} of project {key} on the design node")
    with audit.action("export_bundle", node="design", bundle_id=bundle_id) as detail:
        try:
            answer = node.export_bundle(key, bundle_id, release_notes=notes)
        except DSSConflict:
            raise InputError(
                f"bundle {bundle_id} was already exported for project {key} on the design node",
                "bundle ids must be unique: pass a new --bundle-id or --build-number",
            ) from None
        except DSSNotFound:
            raise InputError(
                f"project {key} does not exist on the design node {cfg.design.url}",
                "fix 'project' in mlcd.yaml (run `mlcd validate` to check the setup)",
            ) from None
        detail["recovered"] = bool(answer.get("recovered"))

    dest = ctx.out_dir / "bundles" / f"{bundle_id}.zip"
    ctx.progress(f"downloading the archive to {dest}")
    with audit.action("download_bundle", node="design", bundle_id=bundle_id) as detail:
        transfer = node.download_bundle(
            key, bundle_id, dest, progress=TransferProgress(ctx.progress, f"download {bundle_id}")
        )
        detail.update(size=transfer.size, sha256=transfer.sha256, path=str(transfer.path))
    ctx.progress(f"archive {transfer.size} bytes, sha256 {transfer.sha256}")

    record = RunRecord.create(
        ctx.out_dir,
        bundleId=bundle_id,
        sha256=transfer.sha256,
        size=transfer.size,
        archive=str(Path(transfer.path).resolve()),
        gitSha=git_sha,
        buildUrl=ctx.build_url,
        buildNumber=args.build_number,
        actor=ctx.actor,
        createdAt=utc_now_iso(),
        project=key,
        releaseNotes=notes,
    )
    audit.record(
        "bundle",
        "SUCCESS",
        node="design",
        bundle_id=bundle_id,
        sha256=transfer.sha256,
        detail={"size": transfer.size, "gitSha": git_sha, "buildNumber": args.build_number},
    )
    return StageResult(
        outcome="SUCCESS",
        message=f"bundle {bundle_id} exported ({transfer.size} bytes, sha256 {transfer.sha256[:12]}…)",
        bundle_id=bundle_id,
        details={
            "sha256": transfer.sha256,
            "size": transfer.size,
            "archive": record.data["archive"],
            "gitSha": git_sha,
        },
    )
