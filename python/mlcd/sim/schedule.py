"""Scheduled scenario triggers of the stand-in: an active scenario's time-based trigger fires on its period.

A DSS scenario lists its triggers (``triggers: [{id, type, active, params}]``); on an
automation node a trigger fires on its own only while the scenario is *active* (its
automatic triggers on: ``scenariosActiveOnActivation``, the scenario's ``active`` flag)
and the trigger itself is active (confirmed: DSS docs, scenarios/triggers; dataikuapi
``DSSScenarioSettings.active`` and ``raw_triggers``). A ``temporal`` trigger's period is
``params.periodSeconds`` when given (a stand-in knob, so tests and demos need not wait a
minute: inferred), else ``params.repeatFrequency`` times ``frequency`` (Minutely, Hourly, Daily).
A fire starts an ordinary run, whose ``trigger`` is the scheduled trigger.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from mlcd.sim.errors import SimError

if TYPE_CHECKING:
    from mlcd.sim.scenarios import ScenarioRunner
    from mlcd.sim.store import Store

_UNIT_S = {"minutely": 60.0, "hourly": 3600.0, "daily": 86400.0}


def period_of(trigger: dict[str, Any]) -> float | None:
    """Seconds between two fires of a time-based trigger (None: not one, or no usable period)."""
    if str(trigger.get("type") or "") != "temporal" or trigger.get("active", True) is False:
        return None
    raw = trigger.get("params")
    params: dict[str, Any] = raw if isinstance(raw, dict) else {}
    try:
        if params.get("periodSeconds") is not None:
            return max(0.5, float(params["periodSeconds"]))
        unit = _UNIT_S.get(str(params.get("frequency") or "").lower())
        return unit * max(1.0, float(params.get("repeatFrequency") or 1)) if unit else None
    except (TypeError, ValueError):
        return None


class Scheduler:
    """Fires the time-based triggers of an automation node's active scenarios (a daemon thread)."""

    def __init__(self, store: Store, runner: ScenarioRunner, tick: float = 1.0) -> None:
        self.store = store
        self.runner = runner
        self.tick = tick
        self._stop = threading.Event()
        self._since: dict[tuple[str, str, str], float] = {}  # when each trigger was last armed or fired
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)

    def start(self) -> Scheduler:
        """Start firing (automation nodes only: a design node's triggers never fire here)."""
        if self.store.role == "automation":
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop firing."""
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.fire_due(time.monotonic())
            except (OSError, ValueError, SimError):
                continue  # a project being written or deleted: try again next tick

    def fire_due(self, now: float) -> list[tuple[str, str]]:
        """Fire every trigger whose period has passed since it was armed; the (project, scenario) fired."""
        fired: list[tuple[str, str]] = []
        armed: set[tuple[str, str, str]] = set()
        for key in self.store.auto_project_keys():
            for sid, definition in self.store.scenario_defs(key).items():
                if not self.store.scenario_active(key, sid, definition):
                    continue
                for trigger in definition.get("triggers") or []:
                    period = period_of(trigger) if isinstance(trigger, dict) else None
                    if period is None:
                        continue
                    slot = (key, sid, str(trigger.get("id") or "schedule"))
                    armed.add(slot)
                    since = self._since.setdefault(slot, now)  # switched on now: the period starts
                    if now - since >= period:
                        self._since[slot] = now
                        self.runner.fire(key, sid, definition, {}, trigger=dict(trigger))
                        fired.append((key, sid))
        for slot in set(self._since) - armed:  # switched off: re-armed when switched on again
            del self._since[slot]
        return fired
