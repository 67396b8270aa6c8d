"""One bundle transfer by one client, in its own process (so its peak RSS is its own).

Usage: ``python bench/transfer_worker.py --client mlcd|dataikuapi --op download|upload
--url URL --project KEY --bundle ID --file PATH``; the API key comes from
``$MLCD_BENCH_API_KEY``. Prints one JSON line: ``{"seconds": ..., "bytes": ...}``,
timed around the transfer call only (imports and interpreter start-up excluded,
as curl's ``time_total`` excludes its own start-up).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

KEY_ENV = "MLCD_BENCH_API_KEY"


def _mlcd(op: str, url: str, key: str, project: str, bundle: str, path: Path) -> int:
    from mlcd.dss.node import DSSNode

    node = DSSNode(url, key, name="bench", read_timeout=600.0)
    try:
        if op == "download":
            return node.download_bundle(project, bundle, path).size
        node.create_project_from_bundle(path)
        return path.stat().st_size
    finally:
        node.close()


def _dataikuapi(op: str, url: str, key: str, project: str, bundle: str, path: Path) -> int:
    from dataikuapi import DSSClient

    client = DSSClient(url, key)
    if op == "download":
        client.get_project(project).download_exported_bundle_archive_to_file(bundle, str(path))
    else:
        with open(path, "rb") as fh:
            client.create_project_from_bundle_archive(fh)
    return path.stat().st_size


def main() -> int:
    """Run one transfer and print its timing as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--client", choices=["mlcd", "dataikuapi"], required=True)
    parser.add_argument("--op", choices=["download", "upload"], required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--file", required=True, type=Path)
    args = parser.parse_args()
    key = os.environ.get(KEY_ENV, "")
    if not key:
        print(f"transfer_worker: set {KEY_ENV}", file=sys.stderr)
        return 2
    # import the client before the clock starts
    if args.client == "mlcd":
        import mlcd.dss.node  # noqa: F401
    else:
        import dataikuapi  # noqa: F401
    do = _mlcd if args.client == "mlcd" else _dataikuapi
    started = time.perf_counter()
    size = do(args.op, args.url, key, args.project, args.bundle, args.file)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "bytes": size}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
