"""The API roles of `mlcd sim serve`: ``apideployer`` and ``apinode`` (see their modules), and their dialects.

A dialect is a switch per plausible reading of a behaviour the evidence does not settle
(docs/stand-in.md, "API Deployer and API node roles"), read from ``<data dir>/dialect.json``:

* ``labels``: ``string`` (default: ``"prediction": "1"``) or ``int`` (``"prediction": 1``);
* ``service_urls``: ``apiNodes`` (default: heavy status lists ``apiNodes[].url``, a static
  infrastructure) or ``publicURL`` (one ``publicURL``, as dataikuapi reads for other infrastructures).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Flask

API_DIALECTS: dict[str, tuple[str, ...]] = {
    "labels": ("string", "int"),
    "service_urls": ("apiNodes", "publicURL"),
}


def read_dialect(data_dir: Path) -> dict[str, str]:
    """The dialect of the data dir (defaults: the first reading of each switch); ValueError if unknown."""
    path = data_dir / "dialect.json"
    given: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    out = {}
    for key, readings in API_DIALECTS.items():
        value = str(given.get(key, readings[0]))
        if value not in readings:
            raise ValueError(f"dialect {key}: {value!r} is not one of {', '.join(readings)}")
        out[key] = value
    return out


def create_api_role_app(role: str, data_dir: Path, api_key: str) -> Flask:
    """The Flask app of an API role."""
    data_dir.mkdir(parents=True, exist_ok=True)
    dialect = read_dialect(data_dir)
    if role == "apinode":
        from mlcd.sim.apinode import create_apinode_app

        return create_apinode_app(api_key, dialect)
    from mlcd.sim.apideployer import create_apideployer_app

    return create_apideployer_app(data_dir, api_key, dialect)
