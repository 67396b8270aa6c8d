"""`mlcd jenkins onboard|lint|report`: the platform team's and CI admins' commands (python/mlcd/jenkins/)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mlcd.commands.context import StageContext
from mlcd.commands.options import JenkinsOptions
from mlcd.commands.result import StageResult
from mlcd.errors import InputError

if TYPE_CHECKING:
    from mlcd.jenkins.configxml import JobSpec
    from mlcd.jenkins.onboard import Change


def _spec(o: JenkinsOptions) -> JobSpec:
    from mlcd import __version__
    from mlcd.jenkins.configxml import JobSpec

    if o.library_scope == "folder" and not o.library_repo:
        raise InputError("--library-scope folder needs --library-repo", "pass the mlcd library's Git URL")
    version = o.library_version or __version__.split("+")[0]
    return JobSpec(
        folder=o.folder or "",
        job=o.job or "",
        repo_url=o.repo or "",
        kind=o.kind,
        scm_credentials_id=o.scm_credentials,
        library_version=version,
        library_scope=o.library_scope,
        library_repo=o.library_repo,
        library_credentials_id=o.library_credentials,
        include=o.include,
        exclude=o.exclude,
        tags=o.tags,
        branch=o.branch,
        keep_builds=o.keep_builds,
    )


def _show_changes(ctx: StageContext, o: JenkinsOptions, changes: list[Change]) -> None:
    """Each planned change's action, its diff, and on a dry run the job's config.xml (secrets masked)."""
    from mlcd.jenkins import configxml as cx
    from mlcd.jenkins import onboard

    for change in changes:
        ctx.progress(f"{change.name}: {change.action}")
        if o.dry_run:
            print(onboard.masked(cx.to_text(change.xml)), end="")
        for line in change.diff:
            print(onboard.masked(line))


def _checkout_files(ctx: StageContext, o: JenkinsOptions, spec: JobSpec) -> list[str]:
    """``--checkout``: write the Jenkinsfile and mlcd.yaml (on a dry run, say what would be written)."""
    from mlcd.jenkins import onboard

    if not o.checkout:
        return []
    if o.dry_run:
        files = [
            f"{Path(o.checkout) / n}: would be written unless it exists" for n in ("Jenkinsfile", "mlcd.yaml")
        ]
    else:
        files = onboard.write_checkout(
            Path(o.checkout), spec.library_version, o.project or o.job or "PROJECT"
        )
    for line in files:
        ctx.progress(line)
    return files


def _onboard(ctx: StageContext, o: JenkinsOptions) -> StageResult:
    from mlcd.jenkins import onboard
    from mlcd.jenkins.client import connect

    spec = _spec(o)
    server = connect(o.jenkins_url, o.user_env, o.token_env)
    onboard.check_plugins(server, spec)
    changes = onboard.plan_onboarding(server, spec)
    _show_changes(ctx, o, changes)
    if not o.dry_run:
        onboard.apply(server, changes)
    files = _checkout_files(ctx, o, spec)
    summary = ", ".join(f"{c.name} {c.action}" for c in changes)
    return StageResult(
        outcome="NOOP" if o.dry_run or all(c.action == "unchanged" for c in changes) else "SUCCESS",
        message=("dry run: " if o.dry_run else "") + summary,
        details={"items": {c.name: c.action for c in changes}, "dryRun": o.dry_run, "files": files},
    )


def _lint(ctx: StageContext, o: JenkinsOptions) -> StageResult:
    from mlcd.jenkins.lint import lint_jenkinsfile

    return lint_jenkinsfile(ctx, o)


def _report(ctx: StageContext, o: JenkinsOptions) -> StageResult:
    from mlcd.jenkins.builds import build_report

    return build_report(ctx, o)


def run(ctx: StageContext) -> StageResult:
    """Run the action given after `mlcd jenkins`."""
    o = ctx.opts(JenkinsOptions)
    actions = {"onboard": _onboard, "lint": _lint, "report": _report}
    return actions[o.action](ctx, o)
