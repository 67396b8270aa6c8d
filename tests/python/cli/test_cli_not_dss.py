"""A URL that points at a web server that is not DSS: "not a DSS node", exit 6, before anything else.

The other server is a real HTTP server on loopback that records every request: the
only request it may see is the identity check ``GET /public/api/instance-info``.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from support.pipeline_env import PipelineEnv, start_pipeline_env

# what the other server answers to everything: (status, content type, body)
ANSWERS = {
    "404-html": (404, "text/html", b"<html><body><h1>Not Found</h1></body></html>"),
    "200-html": (200, "text/html; charset=utf-8", b"<!doctype html><title>Welcome to nginx!</title>"),
    "200-json-other": (200, "application/json", b'{"status": "UP"}'),
    "401-plain": (401, "text/plain", b"Unauthorized"),
}


class _Other(ThreadingHTTPServer):
    answer: tuple[int, str, bytes]
    seen: list[str]


class _Handler(BaseHTTPRequestHandler):
    server: _Other

    def _reply(self) -> None:
        self.server.seen.append(f"{self.command} {self.path}")
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        status, ctype, body = self.server.answer
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _reply

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def other() -> Iterator[_Other]:
    """A web server that is not DSS."""
    server = _Other(("127.0.0.1", 0), _Handler)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineEnv]:
    """A pipeline (design, test) with a bundle built."""
    root = tmp_path_factory.mktemp("notdss")
    with start_pipeline_env(root / "pipe", envs=("test",)) as pipe:
        pipe.env["MLCD_LOCK_DIR"] = str(root / "locks")
        proc = pipe.mlcd("bundle", "--build-number", "1")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield pipe


CASES = {
    "validate": (("validate",), "design"),
    "bundle": (("bundle", "--build-number", "9"), "design"),
    "status": (("status", "--env", "test"), "test"),
    "plan": (("plan", "--env", "test"), "test"),
    "deploy": (("deploy", "--env", "test"), "test"),
}


@pytest.mark.parametrize("answer", sorted(ANSWERS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_not_a_dss_node_is_said_before_anything_else(
    built: PipelineEnv, other: _Other, tmp_path: Path, case: str, answer: str
) -> None:
    """Exit 6, one line naming the URL and the mlcd.yaml key to fix; the server saw one identity GET."""
    args, node = CASES[case]
    url = f"http://127.0.0.1:{other.server_address[1]}"
    config = copy.deepcopy(built.config)
    if node == "design":
        config["design"]["url"] = url
    else:
        next(e for e in config["environments"] if e["name"] == node)["url"] = url
    path = tmp_path / "mlcd.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    other.answer = ANSWERS[answer]
    other.seen.clear()
    run_json = json.loads((built.out_dir / "run.json").read_text())
    proc = subprocess.run(
        [sys.executable, "-m", "mlcd", *args], cwd=built.root, env={**built.env, "MLCD_CONFIG": str(path)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 6, lines[0]
    assert lines[0].startswith(f"mlcd {args[0]}: error: {url} is not a DSS node"), lines[0]
    fix = "design.url" if node == "design" else "the url of environment test"
    assert f"(fix: set {fix} in mlcd.yaml" in lines[0], lines[0]
    assert other.seen == ["GET /public/api/instance-info"], other.seen
    if case != "bundle":
        after = json.loads((built.out_dir / "run.json").read_text())
        # a refused deploy is recorded (the ledger: UNCHANGED, nothing active by this run); nothing else moves
        recorded = after.pop("environments", {})
        assert {k: v for k, v in run_json.items() if k != "environments"} == after
        assert all(e.get("state") == "UNCHANGED" for e in recorded.values()), recorded


def test_a_real_node_passes_the_check(built: PipelineEnv) -> None:
    """The stand-in answers like DSS: status works as before."""
    proc = built.mlcd("status", "--env", "test")
    assert proc.returncode == 0, proc.stderr
