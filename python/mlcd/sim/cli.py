"""`mlcd sim`: run one stand-in DSS node (design or automation) on loopback.

The API key is read from ``MLCD_SIM_API_KEY``, never from the command line.
Once listening the node prints exactly one line, ``ready <base-url>``, and
serves until SIGTERM or SIGINT (exit 0).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import ssl
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from werkzeug.serving import BaseWSGIServer

    from mlcd.sim.faults import FaultState
    from mlcd.sim.scenarios import ScenarioRunner
    from mlcd.sim.schedule import Scheduler

API_KEY_ENV = "MLCD_SIM_API_KEY"


def build_parser() -> argparse.ArgumentParser:
    """Parser of `mlcd sim`."""
    parser = argparse.ArgumentParser(
        prog="mlcd sim",
        description="Local stand-in for a Dataiku DSS design or automation node, or a Project Deployer "
        "(for tests and demos). "
        f"The API key comes from the {API_KEY_ENV} environment variable.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="serve the DSS public API of one node until SIGTERM/SIGINT",
        description="Serve the DSS public API (under /public/api/ and /dip/publicapi/) of one node. "
        f"Prints 'ready <base-url>' once listening. API key: ${API_KEY_ENV}.",
    )
    serve.add_argument(
        "--role",
        required=True,
        choices=["design", "automation", "deployer", "apideployer", "apinode"],
        help="node type (deployer: a Project Deployer; apideployer: a design node's API services and "
        "API Deployer; apinode: an API node)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port (0 picks a free one; default 0)")
    serve.add_argument("--data-dir", required=True, help="the node's data dir (projects/, node.json, state/)")
    serve.add_argument("--node-name", default=None, help="node name reported by /instance-info")
    serve.add_argument("--tls-cert", default=None, help="PEM certificate: serve HTTPS (needs --tls-key)")
    serve.add_argument("--tls-key", default=None, help="PEM private key of --tls-cert")
    serve.add_argument("--faults", default=None, help="JSON fault plan to install at start (tests only)")
    serve.add_argument(
        "--test-control",
        action="store_true",
        help="serve the test-control routes /__sim__/ (faults, stats; they need the API key too)",
    )
    return parser


def flask_missing() -> str | None:
    """None when Flask is importable, else the one line saying how to install it."""
    try:
        import flask  # noqa: F401
    except ImportError:
        return (
            "the stand-in needs Flask, which mlcd installs only with its 'sim' extra "
            "(fix: pip install 'mlcd[sim]')"
        )
    return None


def _fail(message: str) -> int:
    print(f"mlcd sim: error: {message}", file=sys.stderr, flush=True)
    return 2


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (OSError, e.g. address in use, if it cannot bind)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=128)


def main(argv: list[str]) -> int:
    """Entry point of `mlcd sim ...`; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int) else 2
    if args.command != "serve":
        parser.print_help()
        return 2
    return serve(args)


def _refusal(args: argparse.Namespace) -> str | None:
    """Why ``serve`` cannot start with these arguments and this environment (None: it can)."""
    missing = flask_missing()
    if missing:
        return missing
    if not os.environ.get(API_KEY_ENV, "").strip():
        return f"no API key: set the environment variable {API_KEY_ENV} (it is never read from argv)"
    if not 0 <= args.port <= 65535:
        return f"--port {args.port} is not a port number (0-65535)"
    if bool(args.tls_cert) != bool(args.tls_key):
        return "--tls-cert and --tls-key must be given together"
    return None


def _tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not args.tls_cert:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.tls_cert, args.tls_key)
    return context


class _CannotServe(Exception):
    """``serve`` stops before serving; the message is its one error line."""


def serve(args: argparse.Namespace) -> int:
    """Run the node until a stop signal."""
    refusal = _refusal(args)
    if refusal:
        return _fail(refusal)
    try:
        faults = _fault_state(args)
        try:
            ssl_context = _tls_context(args)
        except (OSError, ssl.SSLError) as exc:
            raise _CannotServe(f"cannot load TLS certificate/key: {exc}") from exc
        app, runner, scheduler = _node_app(args, os.environ[API_KEY_ENV], faults)
        server = _server(args, app, ssl_context)
    except _CannotServe as exc:
        return _fail(str(exc))
    port = server.socket.getsockname()[1]
    scheme = "https" if ssl_context else "http"
    host = f"[{args.host}]" if ":" in args.host else args.host

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"ready {scheme}://{host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        if scheduler is not None:
            scheduler.stop()
        if runner is not None:
            runner.shutdown()
        server.server_close()
    return 0


def _fault_state(args: argparse.Namespace) -> FaultState:
    """The fault state, with ``--faults``' plan installed if given."""
    from mlcd.sim.faults import FaultPlanError, FaultState

    faults = FaultState()
    try:
        if args.faults:
            faults.set_plan(json.loads(Path(args.faults).read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        kind = "invalid" if isinstance(exc, (FaultPlanError, ValueError)) else "unreadable"
        raise _CannotServe(f"--faults {args.faults}: {kind} fault plan ({str(exc)[:200]})") from exc
    return faults


def _node_app(
    args: argparse.Namespace, api_key: str, faults: FaultState
) -> tuple[Any, ScenarioRunner | None, Scheduler | None]:
    """The WSGI app of ``--role``, and for a DSS node its scenario runner and (started) scheduler."""
    # imported late so that `mlcd sim --help` stays fast
    from mlcd.sim.scenarios import ScenarioRunner
    from mlcd.sim.server import create_app
    from mlcd.sim.store import Store

    if args.role in ("apideployer", "apinode"):
        from mlcd.sim.apiroles import create_api_role_app

        return create_api_role_app(args.role, Path(args.data_dir), api_key), None, None
    try:
        store = Store(Path(args.data_dir), args.role, args.node_name)
    except OSError as exc:
        raise _CannotServe(f"cannot use data dir {args.data_dir}: {exc.strerror or exc}") from exc
    runner = ScenarioRunner(store)
    from mlcd.sim.schedule import Scheduler

    scheduler = Scheduler(store, runner).start()
    app = create_app(store, runner, api_key, faults, test_control=bool(args.test_control or args.faults))
    return app, runner, scheduler


def _server(args: argparse.Namespace, app: Any, ssl_context: ssl.SSLContext | None) -> BaseWSGIServer:
    """A threaded WSGI server for ``app`` on ``--host:--port``."""
    from werkzeug.serving import make_server

    try:
        listener = _listen(args.host, args.port)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else (exc.strerror or type(exc).__name__)
        raise _CannotServe(
            f"cannot listen on {args.host}:{args.port}: {reason} "
            "(fix: choose another --port, or --port 0 for a free one)"
        ) from exc
    try:
        server = make_server(
            args.host, args.port, app, threaded=True, ssl_context=ssl_context, fd=listener.fileno()
        )
    except (OSError, SystemExit) as exc:
        listener.close()
        raise _CannotServe(f"cannot serve on {args.host}:{args.port}: {exc}") from exc
    listener.close()  # the server holds its own duplicate of the socket
    return server
