"""mlcd: CI/CD for Dataiku DSS machine-learning projects."""

from __future__ import annotations


def _read_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlcd")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


__version__ = _read_version()
