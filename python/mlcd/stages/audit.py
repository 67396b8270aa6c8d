"""`mlcd audit verify`: check that the audit trail's chain is intact, naming the first bad line.

With ``signing.key_env`` in mlcd.yaml every line must carry an HMAC under the
signing key (or, while rotating, the previous key); without it, the plain SHA-256
chain is checked (it detects edits that do not recompute it: see docs/security.md).
Changes nothing.
"""

from __future__ import annotations

from mlcd.audit import verify_chain
from mlcd.commands.context import StageContext
from mlcd.commands.result import StageResult
from mlcd.errors import InputError
from mlcd.signing import signing_keys


def check_trail(ctx: StageContext) -> int:
    """Verify ``<out-dir>/audit.jsonl``; return its record count. AuditChainError (exit 2) if broken."""
    keys = signing_keys(ctx.config())
    return verify_chain(ctx.out_dir / "audit.jsonl", keys.all(), require_key=keys.configured)


def run(ctx: StageContext) -> StageResult:
    """Verify the audit trail's chain."""
    path = ctx.out_dir / "audit.jsonl"
    if not path.is_file():
        raise InputError(f"no audit trail at {path}", "pass the --out-dir of the run to check")
    keys = signing_keys(ctx.config())
    count = check_trail(ctx)
    kind = f"HMAC-SHA256 under {keys.env_var}" if keys.configured else "SHA-256 (no signing key configured)"
    return StageResult(
        outcome="SUCCESS",
        message=f"audit trail {path}: {count} records, chain intact ({kind})",
        details={"records": count, "path": str(path), "signed": keys.configured},
    )
