"""`mlcd approve --env E --approver NAME`: record who approved this run's bundle for an environment.

The approval is bound to the exact artifact: bundle id and sha256 of the archive.
It goes into the run record (``environments.<env>.approval`` and ``approvedBy``) and
the audit trail (operation ``approve``). Deploy checks it for environments with
``approval: true``.

With ``signing.approval_key_env`` in mlcd.yaml the approval is signed (Ed25519)
over environment, approver, sha256, bundle id, time and comment with a key that
only the approval step holds; deploy verifies it with the public key, so a
hand-edited run record cannot approve anything.
"""

from __future__ import annotations

from typing import Any

from mlcd.commands.context import StageContext
from mlcd.commands.options import ApproveOptions
from mlcd.commands.result import StageResult
from mlcd.errors import InputError
from mlcd.runrecord import RunRecord, utc_now_iso
from mlcd.signing import approver_problem, sign_approval

MAX_COMMENT = 2000


def run(ctx: StageContext) -> StageResult:
    """Record the approval of this run's bundle for ``--env``."""
    env = ctx.environment()
    approver = str(ctx.opts(ApproveOptions).approver or "").strip()
    if not approver:
        raise InputError("--approver is empty", "pass --approver NAME (who approved the release)")
    bad = approver_problem(str(ctx.opts(ApproveOptions).approver or ""))
    if bad:
        raise InputError(f"--approver is not a plain name: {bad}", "pass the approver's user name")
    comment = str(ctx.opts(ApproveOptions).comment or "").strip()[:MAX_COMMENT]
    record = RunRecord.load(ctx.out_dir)
    if not record.sha256:
        raise InputError(
            f"run record {record.path} has no sha256 for bundle {record.bundle_id}",
            "run `mlcd bundle` or `mlcd fetch` again before approving",
        )
    approval: dict[str, Any] = {
        "environment": env.name,
        "approver": approver,
        "time": utc_now_iso(),
        "comment": comment,
        "bundleId": record.bundle_id,
        "sha256": record.sha256,
        "actor": ctx.actor,
        "buildUrl": ctx.build_url,
    }
    signature = sign_approval(approval, ctx.config().signing)  # exit 2 when the key is unset or wrong
    if signature is not None:
        approval["signature"] = signature
    record.update_env(env.name, approvedBy=approver, approvedSha256=record.sha256, approval=approval)
    ctx.audit().record(
        "approve",
        "SUCCESS",
        environment=env.name,
        bundle_id=record.bundle_id,
        sha256=record.sha256,
        detail={
            "approver": approver,
            "comment": comment,
            "approvalRequired": env.approval,
            "signed": signature is not None,
            "approvalKeyId": signature["keyId"] if signature else None,
        },
    )
    note = "" if env.approval else f" (note: {env.name} does not require approval)"
    return StageResult(
        outcome="SUCCESS",
        message=f"{approver} approved bundle {record.bundle_id} (sha256 {record.sha256[:12]}…) "
        f"for {env.name}{note}",
        bundle_id=record.bundle_id,
        details={"approval": approval},
    )
