"""The `mlcd` entry point: parse (``mlcd.commands.parser``), install signal handlers, dispatch.

Only the parser is imported at start-up so that `mlcd --help` and
`mlcd --version` stay fast (every Jenkins stage pays for them); each command's
module is imported when that command runs.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from mlcd.commands.parser import COMMANDS, build_parser


def _configure_logging(debug: bool) -> None:
    """Warnings (retries, TLS opt-out) on stdout with the progress lines; with --debug, HTTP details.

    stderr is kept for the one-line error a failed command ends with. Always redacted.
    """
    import logging

    from mlcd.redact import redact

    class _Redacting(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return redact(super().format(record))

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_Redacting("[mlcd %(levelname)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    if not debug:
        logging.getLogger("urllib3").setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the mlcd CLI and return its exit code."""
    from mlcd.console import install

    install()  # a closed stdout/stderr (`mlcd deploy | head`) never interrupts a command
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["sim"]:
        from mlcd.sim.cli import main as sim_main

        return sim_main(args_list[1:])
    parser = build_parser()
    args = parser.parse_args(args_list)
    if not args.command:
        parser.print_help()
        return 2
    module_name, _ = COMMANDS[args.command]
    from mlcd import signals

    signals.install(process=argv is None)  # SIGTERM/SIGINT/SIGHUP: ended verified and recorded
    _configure_logging(bool(args.debug))
    from mlcd.commands.runner import execute

    module = importlib.import_module(f"mlcd.stages.{module_name}")
    return execute(args.command, module, args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
