"""A tiny HTTP client for the stand-in tests (plain requests, key as Basic user)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import requests

from mlcd.sim.launcher import SimNode


class Api:
    """Calls ``<node.url>/public/api/<path>`` with the node's key."""

    def __init__(self, node: SimNode, prefix: str = "/public/api") -> None:
        self.node = node
        self.base = node.url + prefix
        self.session = requests.Session()
        self.session.auth = (node.api_key, "")

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.base + path, **kwargs)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self.call(method, path, **kwargs)
        assert resp.status_code < 300, (resp.status_code, resp.text)
        return resp.json()

    def export(self, key: str, bundle_id: str, dest: Path) -> Path:
        self.json("PUT", f"/projects/{key}/bundles/exported/{bundle_id}")
        resp = self.call("GET", f"/projects/{key}/bundles/exported/{bundle_id}/archive", stream=True)
        assert resp.status_code == 200, resp.text
        with dest.open("wb") as fh:
            for chunk in resp.iter_content(65536):
                fh.write(chunk)
        return dest

    def upload(self, path: str, archive: Path) -> requests.Response:
        with archive.open("rb") as fh:
            return self.call("POST", path, files={"file": (archive.name, fh, "application/zip")})

    def run(self, key: str, sid: str) -> dict[str, Any]:
        fire: dict[str, Any] = self.json("POST", f"/projects/{key}/scenarios/{sid}/run", json={})
        return fire

    def wait_run(self, key: str, sid: str, fire: dict[str, Any], finished: bool = True) -> dict[str, Any]:
        """Poll get-run-for-trigger until the run exists (and has a result when ``finished``)."""
        deadline = time.monotonic() + 60
        params = {"triggerId": fire["trigger"]["id"], "triggerRunId": fire["runId"]}
        while time.monotonic() < deadline:
            got = self.json("GET", f"/projects/{key}/scenarios/{sid}/get-run-for-trigger", params=params)
            run = got.get("scenarioRun")
            if run is not None and (not finished or "result" in run):
                return dict(run)
            time.sleep(0.1)
        raise AssertionError(f"run of {sid} did not {'finish' if finished else 'start'}")

    def details(self, key: str, sid: str, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.json("GET", f"/projects/{key}/scenarios/{sid}/{run_id}/")
        return result
