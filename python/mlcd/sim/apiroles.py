"""The API roles of `mlcd sim serve`: ``apideployer`` and ``apinode`` (see their modules)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask


def create_api_role_app(role: str, data_dir: Path, api_key: str) -> Flask:
    """The Flask app of an API role."""
    if role == "apinode":
        from mlcd.sim.apinode import create_apinode_app

        return create_apinode_app(api_key)
    from mlcd.sim.apideployer import create_apideployer_app

    data_dir.mkdir(parents=True, exist_ok=True)
    return create_apideployer_app(data_dir, api_key)
