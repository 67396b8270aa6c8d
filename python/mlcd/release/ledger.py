"""The ledger: the only writer of an environment's ``run.json`` state and of the audit ``deployment`` record.

Both are written from one call (:meth:`Ledger.final`), the state derived from the
record's outcome (:data:`mlcd.release.decisions.STATE_OF_RECORD`), so they cannot
disagree. The intermediate states of a deploy (DEPLOYING, DEPLOYED) are written
here too. A test scans the package so that no other module writes either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlcd.release.decisions import (
    STATE_DEPLOYED,
    STATE_DEPLOYING,
    STATE_OF_RECORD,
    STATE_ROLLED_BACK,
    STATE_UNCHANGED,
)

if TYPE_CHECKING:
    from mlcd.audit import AuditTrail
    from mlcd.runrecord import RunRecord

# the state in which this run's bundle was put on the environment, verified, and nothing else happened since
# (after NEEDS_ATTENTION a person decides: no later command rolls back on its own)
OURS = (STATE_DEPLOYED,)


def deployed_by_this_run(entry: dict[str, Any], bundle_id: str | None) -> bool:
    """True when this run activated ``bundle_id`` on the environment and has not rolled it back."""
    return bool(bundle_id) and entry.get("deployedBundleId") == bundle_id and entry.get("state") in OURS


class Ledger:
    """Records of one environment: ``run.json`` (when there is a run record) and the audit trail."""

    def __init__(self, audit: AuditTrail, record: RunRecord | None, env: str) -> None:
        self.audit = audit
        self.record = record
        self.env = env

    @property
    def entry(self) -> dict[str, Any]:
        """The environment's run.json entry ({} without a run record)."""
        return dict(self.record.env(self.env)) if self.record is not None else {}

    @property
    def bundle_id(self) -> str | None:
        """This run's bundle."""
        return self.record.bundle_id if self.record is not None else None

    def ours(self) -> bool:
        """Whether this run's bundle was put on the environment by this run (and is still there)."""
        return deployed_by_this_run(self.entry, self.bundle_id)

    # -- the deploy's intermediate states ------------------------------------------------------
    def deploying(
        self,
        bundle_id: str,
        sha256: str,
        previous: str | None,
        *,
        settings_before: dict[str, Any] | None = None,
        settings_applied: dict[str, Any] | None = None,
    ) -> None:
        """Before anything changes: the rollback target (bundle and project settings) and DEPLOYING.

        ``settings_before``/``settings_applied``: mlcd.yaml's per-environment settings as the node
        held them and as this deploy sets them (secret values never; see mlcd.release.envapply).
        """
        self._update(
            previousBundleId=previous,
            deployedBundleId=None,
            state=STATE_DEPLOYING,
            bundleId=bundle_id,
            sha256=sha256,
            activeBundleId=previous,
            settingsBefore=settings_before or {},
            settingsApplied=settings_applied or {},
        )
        detail: dict[str, Any] = {"previousBundleId": previous}
        if settings_before or settings_applied:
            detail.update(settingsBefore=settings_before or {}, settingsApplied=settings_applied or {})
        self.audit.record(
            "record_previous",
            "SUCCESS",
            detail=detail,
            node=self.env,
            environment=self.env,
            bundle_id=bundle_id,
            sha256=sha256,
        )

    def deployed(
        self, bundle_id: str, *, previous: str | None, message: str, final: bool, noop: bool = False
    ) -> None:
        """``bundle_id`` is active and verified; with ``final`` the deployment SUCCEEDED record too."""
        fields: dict[str, Any] = {
            "deployedBundleId": bundle_id,
            "state": STATE_DEPLOYED,
            "activeBundleId": bundle_id,
        }
        if noop and "previousBundleId" not in self.entry:
            fields["previousBundleId"] = None
        self._update(**fields)
        if final:
            if not (noop and self.last_final_succeeded(bundle_id)):
                self._deployment("SUCCEEDED", bundle_id, bundle_id, message)
        elif not noop:
            self.audit.record(
                "deploy",
                "DEPLOYED",
                detail={"previousBundleId": previous, "message": message},
                node=self.env,
                environment=self.env,
                bundle_id=bundle_id,
            )

    # -- the final record ----------------------------------------------------------------------
    def final(self, outcome: str, *, bundle_id: str | None, active: str | None, message: str) -> None:
        """The environment's audit ``deployment`` record and the matching run.json state."""
        state = STATE_OF_RECORD[outcome]
        fields: dict[str, Any] = {"activeBundleId": active}
        entry = self.entry
        if state == STATE_UNCHANGED:
            if entry.get("state") not in (None, STATE_DEPLOYING):
                fields = {"activeBundleId": active} if active else {}  # an earlier state of this run stands
            else:
                fields["state"] = state
        else:
            fields["state"] = state
            if state == STATE_ROLLED_BACK or (active is not None and active != entry.get("deployedBundleId")):
                fields["deployedBundleId"] = None
        if fields:
            self._update(**fields)
        self._deployment(outcome, bundle_id, active, message)

    def succeeded_once(self, bundle_id: str, message: str) -> None:
        """The SUCCEEDED record of a gate that passed, unless the last record already says so."""
        if not self.last_final_succeeded(bundle_id):
            self.final("SUCCEEDED", bundle_id=bundle_id, active=bundle_id, message=message)

    def last_final_succeeded(self, bundle_id: str) -> bool:
        """Whether the audit trail's last ``deployment`` record of the environment is SUCCEEDED for it."""
        from mlcd.audit import read_audit

        finals = [
            r
            for r in read_audit(self.audit.path)
            if r.get("operation") == "deployment" and r.get("environment") == self.env
        ]
        return (
            bool(finals)
            and finals[-1].get("outcome") == "SUCCEEDED"
            and finals[-1].get("bundleId") == bundle_id
        )

    def _deployment(self, outcome: str, bundle_id: str | None, active: str | None, message: str) -> None:
        self.audit.deployment_outcome(
            self.env, outcome, bundle_id=bundle_id, active_bundle_id=active, message=message
        )

    def _update(self, **fields: Any) -> None:
        if self.record is not None:
            self.record.update_env(self.env, **fields)
