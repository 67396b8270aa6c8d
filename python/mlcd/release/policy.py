"""One policy for the earlier environments of a run when a later environment fails.

``mlcd.yaml``'s ``on_failure: {earlier_environments: rollback | keep}`` (default
``rollback``: every environment this run changed goes back to the bundle it had
before), with ``rollback_on_failure: false`` on an environment opting that one
out. `mlcd run` and `mlcd unwind` (what ``mlcdPipeline`` calls) both decide here.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from mlcd.release.decisions import STATE_DEPLOYED, STATE_DEPLOYING, STATE_NEEDS_ATTENTION, STATE_ROLLED_BACK

POLICIES = ("rollback", "keep")


class Unwind(str, Enum):
    """What happens to one earlier environment."""

    ROLL_BACK = "ROLL_BACK"
    KEEP = "KEPT"  # this run's bundle stays (policy keep, or the environment opted out)
    NOOP = "NOOP"  # nothing to do: this run did not change it, or mlcd already rolled it back


def changed_by_run(entry: dict[str, Any], bundle_id: str) -> bool:
    """Whether this run changed the environment's active bundle (or may have: an unfinished deploy)."""
    if entry.get("bundleId") != bundle_id:
        return False
    previous = entry.get("previousBundleId")
    if previous == bundle_id:
        return False  # the bundle was already active before this run
    return entry.get("state") in (STATE_DEPLOYED, STATE_DEPLOYING)


def already_handled(entry: dict[str, Any]) -> bool:
    """Whether mlcd already rolled the environment back, or tried and recorded that a person must act."""
    return entry.get("state") in (STATE_ROLLED_BACK, STATE_NEEDS_ATTENTION)


def decide(policy: str, rollback_on_failure: bool, entry: dict[str, Any], bundle_id: str) -> Unwind:
    """The fate of one earlier environment (``entry``: its run.json record) under ``policy``."""
    if already_handled(entry) or not changed_by_run(entry, bundle_id):
        return Unwind.NOOP
    if policy == "keep" or not rollback_on_failure:
        return Unwind.KEEP
    return Unwind.ROLL_BACK
