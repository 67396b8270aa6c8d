"""The correctness gate: every labelled request, on every API node, answered well-formed and right enough.

Fails when an answer is an error or malformed, when a record is ``ignored`` by the
model, when a prediction is outside ``classes`` (when given), or when the score
misses the threshold: accuracy at least ``threshold``, or the mean absolute error
(``metric: mae``, regression) at most ``threshold``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from mlcd.apiservice.config import CorrectnessGate
from mlcd.apiservice.prediction import predict, prediction_session
from mlcd.apiservice.requests_file import LabelledRequest

MAX_LISTED = 10  # problems named in the gate's message


@dataclass
class CorrectnessResult:
    """What the gate measured and why it failed (``problems`` empty: passed)."""

    metric: str
    score: float | None
    threshold: float
    answered: int
    problems: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def passed(self) -> bool:
        """No problem."""
        return not self.problems

    def summary(self) -> str:
        """One sentence."""
        score = "n/a" if self.score is None else f"{self.score:.4g}"
        head = (
            f"{self.metric} {score} ({'min' if self.metric == 'accuracy' else 'max'} {self.threshold:g}) "
            f"over {self.answered} answers"
        )
        if self.passed:
            return head
        more = f" (+{len(self.problems) - MAX_LISTED} more)" if len(self.problems) > MAX_LISTED else ""
        return f"{head}: " + "; ".join(self.problems[:MAX_LISTED]) + more

    def numbers(self) -> dict[str, Any]:
        """For the stage file."""
        return {
            "metric": self.metric,
            "score": self.score,
            "threshold": self.threshold,
            "answered": self.answered,
            "problems": self.problems[:50],
            "passed": self.passed,
        }


def _matches(prediction: Any, expected: Any) -> bool:
    return str(prediction) == str(expected)


def run_correctness(
    gate: CorrectnessGate,
    requests_: list[LabelledRequest],
    urls: list[str],
    endpoint: str,
    api_key: str | None,
    timeout: tuple[float, float],
    verify: bool | str = True,
) -> CorrectnessResult:
    """Send every request to every URL and score the answers."""
    started = time.monotonic()
    result = CorrectnessResult(gate.metric, None, gate.threshold, 0)
    session = prediction_session(api_key, verify)
    classes = {str(c) for c in gate.classes}
    hits, errors_abs = 0, 0.0
    try:
        for url in urls:
            target = f"{url}/{endpoint}/predict"
            for req in requests_:
                answer = predict(session, target, json.dumps({"features": req.features}).encode(), timeout)
                where = f"line {req.line}"
                if answer.result is None:
                    result.problems.append(f"{where}: {answer.problem}")
                    continue
                if answer.result.get("ignored"):
                    reason = answer.result.get("ignoreReason") or "no reason given"
                    result.problems.append(f"{where}: ignored by the model ({reason})")
                    continue
                pred = answer.result.get("prediction")
                if classes and str(pred) not in classes:
                    result.problems.append(f"{where}: prediction {pred!r} is not one of the classes")
                    continue
                result.answered += 1
                if gate.metric == "mae":
                    try:
                        errors_abs += abs(float(str(pred)) - float(str(req.expected)))
                    except (TypeError, ValueError):
                        result.problems.append(
                            f"{where}: prediction {pred!r} or expected value is not a number"
                        )
                else:
                    hits += int(_matches(pred, req.expected))
    finally:
        session.close()
    result.duration_s = time.monotonic() - started
    _score(result, hits, errors_abs)
    return result


def _score(result: CorrectnessResult, hits: int, errors_abs: float) -> None:
    if not result.answered:
        result.problems.append("no usable answer")
        return
    if result.metric == "mae":
        result.score = errors_abs / result.answered
        if result.score > result.threshold:
            result.problems.insert(0, f"mean absolute error {result.score:.4g} above {result.threshold:g}")
        return
    result.score = hits / result.answered
    if result.score < result.threshold:
        result.problems.insert(0, f"accuracy {result.score:.4g} below {result.threshold:g}")
