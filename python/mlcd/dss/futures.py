"""Waiting on DSS futures (long-running tasks) with a deadline, aborting them on expiry.

A task-starting call answers with a future state: either already finished
(``hasResult: true`` with ``result``, maybe without ``jobId``) or running
(``jobId``). :func:`wait_for_future` handles both, polls cheaply (``peek=true``)
with growing intervals capped at ``tick``, fetches the result once, and on the
deadline aborts the future (DELETE ``/futures/{id}``) and raises
:class:`DSSTimeout` carrying the job id as ``run_id``.

No command calls it yet: it is kept for the Project Deployer deployment target
(:mod:`mlcd.release.target`), whose deployments are futures; its tests keep it working.
"""

from __future__ import annotations

from typing import Any

from mlcd.dss.errors import DSSError, DSSServerError, DSSTimeout
from mlcd.dss.node import DSSNode


def wait_for_future(
    node: DSSNode,
    future: dict[str, Any] | str,
    deadline_s: float,
    *,
    operation: str = "",
    tick: float = 1.0,
    first_poll_s: float = 0.2,
) -> Any:
    """Wait until the future has a result and return it; abort it and raise DSSTimeout at the deadline."""
    if isinstance(future, dict):
        if future.get("hasResult"):
            return future.get("result")
        job_id = str(future.get("jobId") or "")
    else:
        job_id = future
    op = operation or f"wait for future {job_id}"
    if not job_id:
        raise DSSServerError(
            None, None, None, "the task answer has neither a result nor a job id", node.name, op
        )
    clock, sleep = node.clock, node.sleep
    deadline = clock() + deadline_s
    interval = first_poll_s
    while True:
        state = node.get_future(job_id, peek=True)
        if state.get("hasResult"):
            return node.get_future(job_id, peek=False).get("result")
        if state.get("alive") is False:
            raise DSSServerError(
                None,
                None,
                None,
                "the task ended without a result",
                node.name,
                op,
                hint="see the task's log on the node",
            )
        now = clock()
        if now >= deadline:
            abort_note = ""
            try:
                node.abort_future(job_id)
            except DSSError as exc:
                abort_note = f" (abort failed: {exc.dss_message or type(exc).__name__})"
            raise DSSTimeout(
                None,
                None,
                None,
                f"task did not finish within {deadline_s:g}s and was aborted{abort_note}",
                node.name,
                op,
                run_id=job_id,
            )
        sleep(max(0.0, min(interval, deadline - now)))
        interval = min(tick, interval * 1.5)
