"""The correctness gate: every labelled request, on every API node, answered well-formed and right enough.

Fails when an answer is an error or malformed, when a record is ``ignored`` by the
model, when a prediction is outside ``classes`` (when given), or when the score
misses the threshold: accuracy at least ``threshold``, or the mean absolute error
(``metric: mae``, regression) at most ``threshold``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from mlcd.apiservice.config import CorrectnessGate
from mlcd.apiservice.prediction import predict_multi, prediction_session
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


BATCH = 100  # records per /predict-multi call


def run_correctness(
    gate: CorrectnessGate,
    requests_: list[LabelledRequest],
    urls: list[str],
    endpoint: str,
    api_key: str | None,
    timeout: tuple[float, float],
    verify: bool | str = True,
) -> CorrectnessResult:
    """Send every request to every URL (``/predict-multi``, :data:`BATCH` at a time) and score the answers."""
    started = time.monotonic()
    result = CorrectnessResult(gate.metric, None, gate.threshold, 0)
    scorer = _Scorer(gate, result)
    session = prediction_session(api_key, verify)
    try:
        for url in urls:
            for i in range(0, len(requests_), BATCH):
                batch = requests_[i : i + BATCH]
                records = [{"features": r.features} for r in batch]
                answers, problem = predict_multi(session, f"{url}/{endpoint}/predict-multi", records, timeout)
                if answers is None:
                    result.problems.append(f"lines {batch[0].line}-{batch[-1].line}: {problem}")
                    continue
                for req, answer in zip(batch, answers, strict=True):
                    scorer.add(req, answer)
    finally:
        session.close()
    result.duration_s = time.monotonic() - started
    _score(result, scorer.hits, scorer.abs_errors)
    return result


class _Scorer:
    """Checks one answer against its labelled request and keeps the score's sums."""

    def __init__(self, gate: CorrectnessGate, result: CorrectnessResult) -> None:
        self.gate = gate
        self.result = result
        self.classes = {str(c) for c in gate.classes}
        self.hits = 0
        self.abs_errors = 0.0

    def add(self, req: LabelledRequest, answer: dict[str, Any]) -> None:
        where = f"line {req.line}"
        problems = self.result.problems
        if answer.get("ignored"):
            problems.append(
                f"{where}: ignored by the model ({answer.get('ignoreReason') or 'no reason given'})"
            )
            return
        if "prediction" not in answer:
            problems.append(f"{where}: the answer has no prediction")
            return
        pred = answer.get("prediction")
        if self.classes and str(pred) not in self.classes:
            problems.append(f"{where}: prediction {pred!r} is not one of the classes")
            return
        if self.gate.metric == "mae":
            try:
                self.abs_errors += abs(float(str(pred)) - float(str(req.expected)))
            except ValueError:
                problems.append(f"{where}: prediction {pred!r} or expected value is not a number")
                return
        else:
            self.hits += int(str(pred) == str(req.expected))
        self.result.answered += 1


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
