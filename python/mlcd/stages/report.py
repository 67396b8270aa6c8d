"""`mlcd report delivery`: delivery metrics from audit trails on disk and, with a controller, its builds.

Writes ``<out-dir>/reports/delivery/delivery.json`` and ``index.html`` (with its
chart) and prints a table (or the JSON, ``--format json``; the page's path,
``--format html``). Needs no mlcd.yaml. Changes nothing but those files.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from mlcd.commands.context import StageContext
from mlcd.commands.options import DeliveryOptions
from mlcd.commands.result import StageResult
from mlcd.errors import InputError
from mlcd.metrics.delivery import HEADERS, Record, compute, table_rows, text_table


def _from_jenkins(o: DeliveryOptions) -> list[Record]:
    from mlcd.jenkins.builds import archived_builds
    from mlcd.jenkins.client import connect
    from mlcd.metrics.sources import records_from_builds

    if not o.job:
        raise InputError("--jenkins-url needs --job", "pass the job or folder whose builds to read")
    server = connect(o.jenkins_url, o.user_env, o.token_env)
    return records_from_builds(server, archived_builds(server, o.job, o.last))


def collect(ctx: StageContext, o: DeliveryOptions) -> tuple[list[Record], int]:
    """Every record of the given trails (and builds); the number of trails read."""
    from mlcd.metrics.sources import records_from_files, trail_files

    paths = [Path(p) for p in o.audit] or [ctx.out_dir]
    own = ctx.out_dir / "reports"
    files = [f for f in trail_files(paths) if own not in f.parents]
    records = records_from_files(files)
    if o.jenkins_url and o.job:
        records += _from_jenkins(o)
    elif o.job:
        raise InputError("--job needs --jenkins-url", "pass the controller's URL or set JENKINS_URL")
    if not records:
        raise InputError(
            f"no audit record found in {', '.join(str(p) for p in paths)}",
            "pass --audit with the out dir (or audit.jsonl) of mlcd runs",
        )
    return records, len(files)


def run(ctx: StageContext) -> StageResult:
    """Compute and write the delivery metrics."""
    from mlcd.metrics.page import delivery_json, write_delivery

    o = ctx.opts(DeliveryOptions)
    records, trails = collect(ctx, o)
    metrics = compute(records, end=datetime.now(timezone.utc), days=o.days)
    data_path, page = write_delivery(metrics, ctx.out_dir / "reports" / "delivery")
    if o.format == "json":
        print(delivery_json(metrics))
    elif o.format == "html":
        print(page)
    else:
        print(text_table(HEADERS, table_rows(metrics)) if metrics["rows"] else "no deployment in the window")
    deployments = sum(r["deployments"] for r in metrics["rows"])
    return StageResult(
        outcome="SUCCESS",
        message=f"{deployments} deployment(s) in {len(metrics['rows'])} project environment(s) "
        f"from {trails} trail(s): {page}",
        reports=[str(page), str(data_path)],
        details={"rows": metrics["rows"], "window": metrics["window"]},
    )
