"""ScenarioWaiter and wait_for_future: request budget, results, deadlines and aborts."""

from __future__ import annotations

import math
from typing import Any

import pytest

from mlcd.dss.errors import DSSNotFound, DSSRunCancelled, DSSServerError, DSSTimeout
from mlcd.dss.futures import wait_for_future
from mlcd.dss.waiter import ScenarioWaiter
from support.dssfakes import FakeClock, Reply, Seen, dss_error, make_node

BASE = "projects/CHURN/scenarios/"


class World:
    """Scenarios that run for a given time on the fake clock and end with a given outcome."""

    def __init__(
        self, clock: FakeClock, plan: dict[str, tuple[float, str]], appear_after: float = 0.0
    ) -> None:
        self.clock = clock
        self.plan = plan  # sid -> (duration_s, outcome)
        self.appear_after = appear_after
        self.runs: dict[str, dict[str, Any]] = {}  # sid -> run state
        self.already_running: set[str] = set()
        self.cancel: set[str] = set()
        self.cancel_later: set[str] = set()  # fire accepted, then cancelled before its run appears
        self.aborted: list[str] = []
        self.fires = 0

    def _finished(self, sid: str) -> bool:
        r = self.runs.get(sid)
        if r is None:
            return False
        return r.get("aborted") or self.clock.now >= r["t0"] + self.plan[sid][0]

    def _running(self, sid: str) -> bool:
        if sid in self.already_running:
            return True
        if sid in self.cancel_later:
            return False
        r = self.runs.get(sid)
        return bool(r) and self.clock.now >= r["t0"] + self.appear_after and not self._finished(sid)

    def _scenario_run(self, sid: str) -> dict[str, Any] | None:
        r = self.runs[sid]
        if sid in self.cancel_later:
            return None
        if self.clock.now < r["t0"] + self.appear_after and not r.get("aborted"):
            return None
        run: dict[str, Any] = {"runId": f"run-{sid}", "start": int(r["t0"] * 1000), "end": 0}
        if self._finished(sid):
            end = r.get("aborted_at", r["t0"] + self.plan[sid][0])
            run["end"] = int(end * 1000)
            run["result"] = {"outcome": "ABORTED" if r.get("aborted") else self.plan[sid][1]}
        return run

    def __call__(self, seen: Seen) -> Reply:
        path = seen.path
        if seen.method == "GET" and path == BASE:
            return Reply(json_body=[{"id": sid, "running": self._running(sid)} for sid in self.plan])
        if path.startswith(BASE + "trigger/"):
            sid = path[len(BASE + "trigger/") :].split("/", 1)[0]
            assert seen.query == {"triggerRunId": f"tr-{sid}"}
            return Reply(json_body={"runId": f"tr-{sid}", "cancelled": sid in self.cancel_later})
        sid = path[len(BASE) :].split("/", 1)[0]
        rest = path[len(BASE) + len(sid) :]
        if seen.method == "POST" and rest == "/run":
            self.fires += 1
            if sid in self.cancel:
                return Reply(json_body={"trigger": {"id": "manual"}, "runId": "t", "cancelled": True})
            self.runs[sid] = {"t0": self.clock.now}
            return Reply(json_body={"trigger": {"id": "manual"}, "runId": f"tr-{sid}", "cancelled": False})
        if rest == "/get-run-for-trigger":
            assert seen.query == {"triggerId": "manual", "triggerRunId": f"tr-{sid}"}
            run = self._scenario_run(sid)
            return Reply(json_body={"scenarioRun": run} if run else {})
        if rest == f"/run-{sid}/":
            run = self._scenario_run(sid)
            outcome = self.plan[sid][1]
            step_fail = {"outcome": outcome}
            if outcome == "FAILED":
                step_fail["thrown"] = {"clazz": "ScriptError", "message": "accuracy 0.61 < 0.8"}
            steps = [
                {"step": {"id": "prepare", "name": "Prepare"}, "result": {"outcome": "SUCCESS"}},
                {"step": {"id": "score", "name": "Score records"}, "result": step_fail},
            ]
            return Reply(json_body={"scenarioRun": run, "stepRuns": steps})
        if rest == f"/run-{sid}/log":
            text = "\n".join(f"log line {i}" for i in range(100))
            return Reply(body=text.encode(), headers={"Content-Type": "text/plain"})
        if seen.method == "POST" and rest == "/abort":
            self.aborted.append(sid)
            if sid in self.runs:
                self.runs[sid].update(aborted=True, aborted_at=self.clock.now)
            return Reply(json_body={})
        return dss_error(404, message=f"no route {seen.method} {path}")


def test_many_scenarios_one_list_request_per_tick(clock: FakeClock) -> None:
    plan = {f"TEST_{i}": (10.0 + 7 * i, "SUCCESS") for i in range(6)}
    world = World(clock, plan)
    node, t = make_node(world, clock)
    waiter = ScenarioWaiter(node, "CHURN", tick=1.0)
    handles = waiter.start_all(list(plan), deadline_s=600)
    assert t.count("GET", "scenarios/") == 1  # one check before triggering all six
    before = len(t.seen)
    results = waiter.wait(handles)
    waited_s = clock.now - 1000.0
    longest = max(d for d, _ in plan.values())
    # finished noticed within one tick of the longest run
    assert longest <= waited_s <= longest + 1.0
    lists = t.count("GET", "scenarios/") - 1
    assert lists == math.ceil(waited_s) + 1 or lists == math.ceil(waited_s)
    # per-scenario calls: none while it runs; one run lookup when it stopped, one details read
    per_scenario = [s for s in t.seen[before:] if s.path != BASE]
    assert len(per_scenario) == 2 * len(plan)
    assert [r.scenario_id for r in results] == list(plan)
    assert all(r.outcome == "SUCCESS" and r.run_id == f"run-{r.scenario_id}" for r in results)
    assert all(r.log_excerpt == "" for r in results)
    assert results[0].duration_s == 10.0
    assert [s.step_id for s in results[0].steps] == ["prepare", "score"]


def test_run_not_yet_visible_is_polled_until_it_appears(clock: FakeClock) -> None:
    world = World(clock, {"TEST_A": (5.0, "SUCCESS")}, appear_after=2.0)
    node, t = make_node(world, clock)
    results = ScenarioWaiter(node, "CHURN").wait([ScenarioWaiter(node, "CHURN").start("TEST_A", 60)])
    assert results[0].outcome == "SUCCESS"
    lookups = t.count("GET", "get-run-for-trigger")
    assert 3 <= lookups <= 5  # while not visible (about 2 ticks), then once when it stopped


def test_failure_reports_step_error_and_log_tail(clock: FakeClock) -> None:
    world = World(clock, {"TEST_BAD": (3.0, "FAILED"), "TEST_WARN": (2.0, "WARNING")})
    node, _ = make_node(world, clock)
    waiter = ScenarioWaiter(node, "CHURN")
    bad, warn = waiter.wait(waiter.start_all(["TEST_BAD", "TEST_WARN"], 60))
    assert bad.outcome == "FAILED" and not bad.timed_out
    assert (bad.failing_step_id, bad.failing_step_name) == ("score", "Score records")
    assert bad.error_type == "ScriptError" and bad.error_message == "accuracy 0.61 < 0.8"
    lines = bad.log_excerpt.splitlines()
    assert len(lines) == 40 and lines[-1] == "log line 99" and lines[0] == "log line 60"
    assert warn.outcome == "WARNING" and warn.failing_step_id == "score"


def test_deadline_aborts_and_reports_run_id(clock: FakeClock) -> None:
    world = World(clock, {"TEST_SLOW": (3600.0, "SUCCESS"), "TEST_FAST": (2.0, "SUCCESS")})
    node, _t = make_node(world, clock)
    waiter = ScenarioWaiter(node, "CHURN")
    slow, fast = waiter.wait(waiter.start_all(["TEST_SLOW", "TEST_FAST"], deadline_s=30))
    assert fast.outcome == "SUCCESS"
    assert slow.outcome == "TIMEOUT" and slow.timed_out and slow.run_id == "run-TEST_SLOW"
    assert "30s" in (slow.error_message or "")
    assert world.aborted == ["TEST_SLOW"]
    assert 30.0 <= clock.now - 1000.0 <= 31.0


def test_run_raises_dss_timeout_with_run_id(clock: FakeClock) -> None:
    world = World(clock, {"TEST_SLOW": (3600.0, "SUCCESS")})
    node, _ = make_node(world, clock)
    with pytest.raises(DSSTimeout) as info:
        ScenarioWaiter(node, "CHURN").run("TEST_SLOW", deadline_s=5)
    assert info.value.run_id == "run-TEST_SLOW"
    assert "run-TEST_SLOW" in str(info.value)
    assert world.aborted == ["TEST_SLOW"]


def test_already_running_is_not_triggered(clock: FakeClock) -> None:
    world = World(clock, {"TEST_A": (5.0, "SUCCESS")})
    world.already_running.add("TEST_A")
    node, _ = make_node(world, clock)
    with pytest.raises(DSSRunCancelled, match="already running"):
        ScenarioWaiter(node, "CHURN").start("TEST_A", 60)
    assert world.fires == 0


def test_cancelled_trigger_fire_is_reported_not_retried(clock: FakeClock) -> None:
    world = World(clock, {"TEST_A": (5.0, "SUCCESS")})
    world.cancel.add("TEST_A")
    node, _ = make_node(world, clock)
    with pytest.raises(DSSRunCancelled, match="cancelled the trigger"):
        ScenarioWaiter(node, "CHURN").start("TEST_A", 60)
    assert world.fires == 1


def test_fire_cancelled_before_its_run_is_reported_aborted(clock: FakeClock) -> None:
    world = World(clock, {"TEST_A": (5.0, "SUCCESS"), "TEST_B": (3.0, "SUCCESS")})
    world.cancel_later.add("TEST_A")
    node, t = make_node(world, clock)
    waiter = ScenarioWaiter(node, "CHURN")
    a, b = waiter.wait(waiter.start_all(["TEST_A", "TEST_B"], 60))
    assert a.outcome == "ABORTED" and a.run_id is None and "cancelled" in (a.error_message or "")
    assert b.outcome == "SUCCESS"
    assert world.fires == 2  # not retried
    assert t.count("GET", "trigger/TEST_A/manual") == 1
    assert clock.now - 1000.0 <= 4.0  # noticed at the first tick, not at the deadline


def test_trigger_failure_aborts_the_runs_already_started(clock: FakeClock) -> None:
    world = World(clock, {"TEST_A": (5.0, "SUCCESS"), "TEST_B": (5.0, "SUCCESS")})
    world.cancel.add("TEST_B")
    node, _ = make_node(world, clock)
    with pytest.raises(DSSRunCancelled):
        ScenarioWaiter(node, "CHURN").start_all(["TEST_A", "TEST_B"], 60)
    assert world.aborted == ["TEST_A"]


def test_unknown_scenario(clock: FakeClock) -> None:
    node, _ = make_node(World(clock, {"TEST_A": (1.0, "SUCCESS")}), clock)
    with pytest.raises(DSSNotFound, match="no scenario TEST_NOPE"):
        ScenarioWaiter(node, "CHURN").start("TEST_NOPE", 60)


class Futures:
    def __init__(self, clock: FakeClock, done_after: float | None, alive: bool = True) -> None:
        self.clock = clock
        self.t0 = clock.now
        self.done_after = done_after
        self.alive = alive
        self.deleted: list[str] = []

    def __call__(self, seen: Seen) -> Reply:
        if seen.method == "DELETE":
            self.deleted.append(seen.path)
            return Reply(204)
        done = self.done_after is not None and self.clock.now - self.t0 >= self.done_after
        state: dict[str, Any] = {"jobId": "j1", "hasResult": done, "alive": self.alive and not done}
        if done and seen.query.get("peek") == "false":
            state["result"] = {"ok": 42}
        return Reply(json_body=state)


def test_future_already_finished_needs_no_request(clock: FakeClock) -> None:
    node, t = make_node(Futures(clock, 0), clock)
    assert wait_for_future(node, {"hasResult": True, "result": {"x": 1}}, 10) == {"x": 1}
    assert t.seen == []


def test_future_polled_until_result(clock: FakeClock) -> None:
    node, t = make_node(Futures(clock, 5.0), clock)
    assert wait_for_future(node, {"jobId": "j1", "hasResult": False}, 60) == {"ok": 42}
    assert 5.0 <= clock.now - 1000.0 <= 6.0
    assert t.seen[-1].query == {"peek": "false"}
    assert all(s <= 1.0 for s in clock.sleeps)


def test_future_deadline_aborts_and_raises(clock: FakeClock) -> None:
    fake = Futures(clock, None)
    node, _ = make_node(fake, clock)
    with pytest.raises(DSSTimeout) as info:
        wait_for_future(node, "j1", 10, operation="update deployment d1")
    assert info.value.run_id == "j1" and "update deployment d1" in str(info.value)
    assert fake.deleted == ["futures/j1"]
    assert clock.now - 1000.0 <= 10.0 + 1e-9


def test_future_dead_without_result(clock: FakeClock) -> None:
    node, _ = make_node(Futures(clock, None, alive=False), clock)
    with pytest.raises(DSSServerError, match="ended without a result"):
        wait_for_future(node, "j1", 10)


def test_wait_until_idle_lets_a_foreign_run_finish_then_returns(clock: FakeClock) -> None:
    world = World(clock, {"TEST_A": (5.0, "SUCCESS"), "TEST_B": (1.0, "SUCCESS")})
    world.already_running.add("TEST_A")

    def handler(seen: Seen) -> Reply:
        if clock.now >= 1007.0:
            world.already_running.discard("TEST_A")
        return world(seen)

    node, t = make_node(handler, clock)
    told: list[list[str]] = []
    waiter = ScenarioWaiter(node, "CHURN", tick=1.0)
    waiter.wait_until_idle(["TEST_A", "TEST_B"], timeout_s=60, on_wait=told.append)
    assert told == [["TEST_A"]]
    assert 7.0 <= clock.now - 1000.0 <= 8.0
    assert world.fires == 0 and world.aborted == []
    assert t.count("GET", "scenarios/") == len(t.seen)  # only list requests, one per tick
    (result,) = waiter.wait(waiter.start_all(["TEST_A"], 60))
    assert result.outcome == "SUCCESS"


def test_wait_until_idle_gives_up_at_its_timeout(clock: FakeClock) -> None:
    world = World(clock, {"TEST_A": (5.0, "SUCCESS")})
    world.already_running.add("TEST_A")
    node, _ = make_node(world, clock)
    with pytest.raises(DSSTimeout, match="TEST_A already running"):
        ScenarioWaiter(node, "CHURN").wait_until_idle(["TEST_A"], timeout_s=10)
    assert 10.0 <= clock.now - 1000.0 <= 11.0
    assert world.aborted == []


def test_abort_after_an_interrupted_wait_stops_only_the_unfinished_runs(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_sleep = clock.sleep

    def sleep_then_sigterm(seconds: float) -> None:
        real_sleep(seconds)
        if clock.now >= 1004.0:
            raise KeyboardInterrupt

    monkeypatch.setattr(clock, "sleep", sleep_then_sigterm)
    world = World(clock, {"TEST_A": (2.0, "SUCCESS"), "TEST_B": (100.0, "SUCCESS")})
    node, _ = make_node(world, clock)
    waiter = ScenarioWaiter(node, "CHURN")
    handles = waiter.start_all(["TEST_A", "TEST_B"], 600)
    with pytest.raises(KeyboardInterrupt):
        waiter.wait(handles)
    assert waiter.abort(handles) == ["TEST_B"]
    assert world.aborted == ["TEST_B"]
