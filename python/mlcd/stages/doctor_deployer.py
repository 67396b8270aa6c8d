"""`mlcd doctor` checks of an environment deployed through the Project Deployer (read-only).

The deployer node answers with the key (``instance-info``), the environment's
infrastructure exists there, the key may deploy to it, and whether the project
already has a deployment on it (else the first deploy creates one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlcd.dss.deployer import ProjectDeployer
from mlcd.dss.errors import DSSError, DSSUnauthorized
from mlcd.errors import MlcdError

if TYPE_CHECKING:
    from mlcd.commands.context import StageContext
    from mlcd.stages.doctor import Doctor


def check_deployer(doc: Doctor, ctx: StageContext, env: Any) -> None:
    """Add the deployer checks of ``env`` (which has a ``deployer`` mapping) to ``doc``."""
    from mlcd.config import node_for

    cfg = env.deployer
    label = f"{env.name} deployer"
    fix_key = f"check the key in {cfg.node.api_key_env} (the deployer's, not the automation node's)"
    try:
        deployer = ProjectDeployer(node_for(cfg.node, name=label))
        infras = deployer.list_infras()
    except DSSUnauthorized:
        doc.add(label, "API key", False, "refused (HTTP 401)", fix_key, "node")
        return
    except MlcdError as exc:
        doc.add(label, "connectivity and API key", False, exc.one_line(),
                "check deployer.url and its key in mlcd.yaml", "node")  # fmt: skip
        return
    doc.add(label, "connectivity and API key", True, f"{cfg.node.url}: {len(infras)} infrastructure(s)")
    if _check_infra(doc, label, env, infras):
        _check_deployment(doc, label, deployer, ctx.config().project, cfg.infra)


def _check_infra(doc: Doctor, label: str, env: Any, infras: list[dict[str, Any]]) -> bool:
    """The environment's infrastructure exists and the key may deploy there; False when it is unknown."""
    cfg = env.deployer
    by_id = {str((i.get("infraBasicInfo") or {}).get("id")): i for i in infras}
    infra = by_id.get(cfg.infra)
    known = ", ".join(sorted(by_id)) or "none"
    verdict = cfg.infra if infra else f"'{cfg.infra}' unknown (known: {known})"
    fix = f"set deployer.infra of environment {env.name} to one of them"
    if not doc.add(label, "infrastructure", infra is not None, verdict, fix):
        return False
    assert infra is not None
    doc.add(label, "key may deploy there", infra.get("canDeploy") is not False,
            "yes" if infra.get("canDeploy") is not False else "no (canDeploy: false)",
            "give the key's user the deploy permission on the infrastructure", "node")  # fmt: skip
    return True


def _check_deployment(doc: Doctor, label: str, deployer: ProjectDeployer, project: str, infra: str) -> None:
    """The project's deployment on the infrastructure (or that the first deploy creates one)."""
    try:
        published = deployer.published_project(project) or {}
    except DSSError as exc:
        doc.add(label, "deployment", False, exc.one_line(), exc.hint or "")
        return
    deps = [d.get("id") for d in published.get("deployments") or [] if d.get("infraId") == infra]
    none = "none yet (the first deploy creates one: nothing to roll back to)"
    doc.add(label, "deployment", True, str(deps[0]) if deps else none)
