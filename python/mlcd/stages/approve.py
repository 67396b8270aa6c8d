"""`mlcd approve --env E --approver NAME`: record who approved this run's bundle for an environment.

The approval is bound to the exact artifact: bundle id and sha256 of the archive.
It goes into the run record (``environments.<env>.approval`` and ``approvedBy``) and
the audit trail (operation ``approve``). Deploy checks it for environments with
``approval: true``.
"""

from __future__ import annotations

from mlcd.commands.context import StageContext
from mlcd.commands.options import ApproveOptions
from mlcd.commands.result import StageResult
from mlcd.errors import InputError
from mlcd.runrecord import RunRecord, utc_now_iso

MAX_COMMENT = 2000


def run(ctx: StageContext) -> StageResult:
    """Record the approval of this run's bundle for ``--env``."""
    env = ctx.environment()
    approver = str(ctx.opts(ApproveOptions).approver or "").strip()
    if not approver:
        raise InputError("--approver is empty", "pass --approver NAME (who approved the release)")
    comment = str(ctx.opts(ApproveOptions).comment or "").strip()[:MAX_COMMENT]
    record = RunRecord.load(ctx.out_dir)
    if not record.sha256:
        raise InputError(
            f"run record {record.path} has no sha256 for bundle {record.bundle_id}",
            "run `mlcd bundle` or `mlcd fetch` again before approving",
        )
    approval = {
        "approver": approver,
        "time": utc_now_iso(),
        "comment": comment,
        "bundleId": record.bundle_id,
        "sha256": record.sha256,
        "actor": ctx.actor,
        "buildUrl": ctx.build_url,
    }
    record.update_env(env.name, approvedBy=approver, approvedSha256=record.sha256, approval=approval)
    ctx.audit().record(
        "approve",
        "SUCCESS",
        environment=env.name,
        bundle_id=record.bundle_id,
        sha256=record.sha256,
        detail={"approver": approver, "comment": comment, "approvalRequired": env.approval},
    )
    note = "" if env.approval else f" (note: {env.name} does not require approval)"
    return StageResult(
        outcome="SUCCESS",
        message=f"{approver} approved bundle {record.bundle_id} (sha256 {record.sha256[:12]}…) "
        f"for {env.name}{note}",
        bundle_id=record.bundle_id,
        details={"approval": approval},
    )
