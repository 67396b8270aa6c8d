"""One environment's release session: what the release core works on and where it records."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlcd.audit import AuditTrail
    from mlcd.config import EnvironmentConfig
    from mlcd.release.ledger import Ledger
    from mlcd.release.target import DeploymentTarget


@dataclass
class Release:
    """An environment, its deployment target, its ledger, the out dir, a progress sink and its lock.

    ``lock()`` holds the environment's deploy lock (re-entrant in one process).
    """

    env: EnvironmentConfig
    target: DeploymentTarget
    ledger: Ledger
    out_dir: Path
    progress: Callable[[str], None]
    lock: Callable[[], AbstractContextManager[object]]

    @property
    def project(self) -> str:
        """The DSS project key."""
        return self.target.project

    @property
    def audit(self) -> AuditTrail:
        """The audit trail."""
        return self.ledger.audit

    @property
    def bundle_id(self) -> str | None:
        """This run's bundle (None without a run record)."""
        return self.ledger.bundle_id
