"""Fixtures of the DSS client tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlcd.redact import clear_secrets
from support.dssfakes import FakeClock


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    yield
    clear_secrets()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
