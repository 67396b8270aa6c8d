"""`make demo`: mlcd releases the churn-prediction project three times on local stand-in DSS nodes.

Starts a design node, a test automation node and a production automation node
(loopback only, data under demo-out/nodes/), puts examples/churn/project on the
design node and runs the real CLI, ``mlcd run``, for three releases:

1. a good model: validated, bundled, deployed and tested on test, approved, deployed
   and smoke-tested on prod (exit 0);
2. a degraded model (retrained on shuffled labels): the test gate fails on the test
   node (exit 3) and prod still runs release 1;
3. a release that passes on test but whose smoke test fails on prod, because of a
   setting only prod has (its currency): mlcd rolls prod back to release 1 and
   verifies it (exit 4).

Each release is checked on the nodes themselves (active bundle per environment),
not only from exit codes. Reports, stage files and audit trails stay under
demo-out/ (wiped at start). Exit status 0 only if all three behaved as expected.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "churn"
PROJECT_KEY = "CHURN"
KEY_ENVS = {"design": "DSS_DESIGN_API_KEY", "test": "DSS_TEST_API_KEY", "prod": "DSS_PROD_API_KEY"}
CONNECTIONS = {
    "design": {"warehouse": {"type": "PostgreSQL"}},
    "test": {"warehouse_test": {"type": "PostgreSQL"}},
    "prod": {"warehouse_prod": {"type": "PostgreSQL"}},
}
RULE = "=" * 100

try:
    import requests
    import yaml
    from lxml import etree

    from mlcd.sim.launcher import SimNode
except ImportError as exc:  # pragma: no cover - only when run outside the project's venv
    print(
        f"demo: cannot import {exc.name}: run it with `make demo` (it sets up .venv first)", file=sys.stderr
    )
    raise SystemExit(2) from None


class DemoError(Exception):
    """Something the demo needs did not work; one line for the user."""


@dataclass
class Release:
    """One release of the demo and what must be true after it."""

    number: int
    title: str
    story: str
    bundle_id: str
    expected_exit: int
    expected_active: dict[str, str]  # environment -> bundle id that must be active afterwards
    prepare: Callable[[], None]
    exit_code: int | None = None
    active: dict[str, str | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class Demo:
    """The three stand-in nodes, the generated configuration and the releases."""

    def __init__(self, out_dir: Path) -> None:
        self.out = out_dir
        # keys from the environment if set (as Jenkins would bind them), else fresh random ones
        self.keys = {name: os.environ.get(env) or secrets.token_urlsafe(24) for name, env in KEY_ENVS.items()}
        self.nodes: dict[str, SimNode] = {}
        self.child: subprocess.Popen[str] | None = None
        self.config_path = self.out / "mlcd.yaml"

    # -- nodes -------------------------------------------------------------------------------------
    def start_nodes(self) -> None:
        """Start the design, test and prod stand-in nodes on free loopback ports."""
        for name, role in (("design", "design"), ("test", "automation"), ("prod", "automation")):
            self.nodes[name] = SimNode.start(
                role=role,
                data_dir=self.out / "nodes" / name,
                api_key=self.keys[name],
                node_name=name,
                connections=CONNECTIONS[name],
            )
        design_project = self.design_project_dir
        shutil.copytree(EXAMPLE / "project", design_project, ignore=shutil.ignore_patterns("__pycache__"))
        for name, node in self.nodes.items():
            print(f"  {name:<7} node: {node.url}  ({node.role}, data in {_rel(node.data_dir)})")

    def stop_nodes(self) -> None:
        """Stop the running mlcd child (if any) and every node; safe to call twice."""
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()
            try:
                self.child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()
        for node in self.nodes.values():
            node.stop()

    @property
    def design_project_dir(self) -> Path:
        """The project folder on the design node (editing it = editing the project in DSS)."""
        return self.out / "nodes" / "design" / "projects" / PROJECT_KEY

    def api(self, node: str, method: str, path: str, body: Any = None) -> Any:
        """Call a node's DSS public API (Basic auth, key as user); the JSON answer."""
        sim = self.nodes[node]
        try:
            resp = requests.request(
                method, sim.api_url + path.lstrip("/"), json=body, auth=(sim.api_key, ""), timeout=30
            )
        except requests.RequestException as exc:
            raise DemoError(f"{node} node: {method} {path} failed: {type(exc).__name__}") from None
        if resp.status_code >= 400:
            raise DemoError(
                f"{node} node: {method} {path} answered HTTP {resp.status_code}: {resp.text[:200]}"
            )
        return resp.json() if resp.content else None

    def active_bundle(self, env: str) -> str | None:
        """The bundle active for the project on an environment's node (None if not deployed)."""
        for project in self.api(env, "GET", "projects/"):
            if project.get("projectKey") == PROJECT_KEY:
                state = project.get("activeBundleState") or {}
                return state.get("bundleId")
        return None

    def last_outcome(self, env: str, scenario: str) -> str | None:
        """Outcome of the newest finished run of a scenario on an environment's node."""
        runs = self.api(env, "GET", f"projects/{PROJECT_KEY}/scenarios/{scenario}/get-last-runs?limit=1")
        if not runs:
            return None
        outcome: str | None = (runs[0].get("result") or {}).get("outcome")
        return outcome

    # -- configuration -----------------------------------------------------------------------------
    def write_config(self) -> None:
        """demo-out/mlcd.yaml: the example's mlcd.yaml with the stand-in nodes' URLs."""
        config = yaml.safe_load((EXAMPLE / "mlcd.yaml").read_text(encoding="utf-8"))
        config["allow_insecure_http"] = True  # the stand-in nodes listen on plain http on loopback
        config["design"]["url"] = self.nodes["design"].url
        for env in config["environments"]:
            env["url"] = self.nodes[env["name"]].url
            env["timeouts"] = {**env.get("timeouts", {}), "scenario": 120, "deploy": 120, "lock": 30}
        config["bundle"]["release_notes"] = "none"
        header = "# generated by scripts/demo.py from examples/churn/mlcd.yaml: the stand-in nodes' URLs\n"
        self.config_path.write_text(header + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        print(f"  config:      {_rel(self.config_path)} (API keys only in the environment: "
              f"{', '.join(KEY_ENVS.values())})")  # fmt: skip

    # -- changes a team would make between releases ------------------------------------------------
    def train(self, version: str, *extra: str) -> None:
        """Retrain the model into the design node's project (tools/train.py)."""
        cmd = [sys.executable, str(EXAMPLE / "tools" / "train.py"), "--project", str(self.design_project_dir),
               "--version", version, *extra]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            raise DemoError(f"training failed: {lines[-1] if lines else f'exit code {done.returncode}'}")
        print(f"  - design node: {done.stdout.strip()}")

    def edit_standard_variables(self, change: Callable[[dict[str, Any]], None], what: str) -> None:
        """Change the project's standard variables on the design node through the DSS API."""
        variables = self.api("design", "GET", f"projects/{PROJECT_KEY}/variables/")
        change(variables["standard"])
        self.api("design", "PUT", f"projects/{PROJECT_KEY}/variables/", variables)
        print(f"  - design node: {what}")

    def set_prod_currency(self) -> None:
        """Prod scores customers billed in EUR: a prod-only local variable, set through the DSS API."""
        variables = self.api("prod", "GET", f"projects/{PROJECT_KEY}/variables/")
        variables.setdefault("local", {})["currency"] = "EUR"
        self.api("prod", "PUT", f"projects/{PROJECT_KEY}/variables/", variables)
        print("  - prod node: local project variable currency = EUR (prod bills in euros, test in USD)")

    # -- releases ----------------------------------------------------------------------------------
    def run_release(self, release: Release) -> None:
        """Prepare the change, run `mlcd run` on it, then check the nodes."""
        print(
            f"\n{RULE}\nRelease {release.number} of 3: {release.title}   (bundle {release.bundle_id})\n{RULE}"
        )
        print(release.story)
        release.prepare()
        out_dir = self.out / f"release-{release.number}"
        cmd = [
            sys.executable, "-m", "mlcd", "run", "--config", str(self.config_path), "--out-dir", str(out_dir),
            "--bundle-id", release.bundle_id, "--approve", "prod", "--approver", "demo-release-manager",
        ]  # fmt: skip
        env = dict(os.environ)
        env.update({KEY_ENVS[name]: key for name, key in self.keys.items()})
        env["PYTHONUNBUFFERED"] = "1"
        env["MLCD_LOCK_DIR"] = str(self.out / "locks")  # deploy locks too stay under demo-out/
        print(f"\n  $ mlcd run --config {_rel(self.config_path)} --out-dir {_rel(out_dir)} "
              f"--bundle-id {release.bundle_id} --approve prod\n")  # fmt: skip
        out_dir.mkdir(parents=True, exist_ok=True)
        with (out_dir / "console.log").open("w", encoding="utf-8") as log:
            self.child = subprocess.Popen(
                cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            assert self.child.stdout is not None
            for line in self.child.stdout:
                log.write(line)
                print(f"  | {line.rstrip()}", flush=True)
            release.exit_code = self.child.wait()
        self.child = None
        self.check(release)

    def check(self, release: Release) -> None:
        """Compare exit code and the nodes' active bundles with what the release should have done."""
        if release.exit_code != release.expected_exit:
            release.problems.append(f"exit code {release.exit_code}, expected {release.expected_exit}")
        for env in ("test", "prod"):
            release.active[env] = self.active_bundle(env)
            want = release.expected_active[env]
            if release.active[env] != want:
                release.problems.append(f"{env} runs {release.active[env]}, expected {want}")
        if release.number == 3:
            smoke = self.last_outcome("prod", "TEST_SMOKE")
            if smoke != "SUCCESS":
                release.problems.append(
                    f"prod's last TEST_SMOKE run after the rollback is {smoke}, not SUCCESS"
                )
        on_nodes = ", ".join(f"{env} runs {bundle}" for env, bundle in release.active.items())
        if release.problems:
            print(f"\n  VERDICT release {release.number}: NOT AS EXPECTED: {'; '.join(release.problems)}")
        else:
            print(f"\n  VERDICT release {release.number}: as expected: exit {release.exit_code} "
                  f"({EXIT_MEANING.get(release.exit_code or 0, '?')}); on the nodes: {on_nodes}")  # fmt: skip

    def releases(self) -> list[Release]:
        """The three releases, each with the change a team makes before it."""
        ids = [f"{PROJECT_KEY}_r{n}" for n in (1, 2, 3)]

        def degrade() -> None:
            self.train("1.1.0", "--shuffle-labels", "--seed", "13")

        def trim_rates() -> None:
            self.set_prod_currency()
            self.train("1.2.0")

            def drop_eur(std: dict[str, Any]) -> None:
                std["fx_rates"] = {"USD": 1.0, "GBP": 1.27}

            self.edit_standard_variables(drop_eur, "standard variable fx_rates trimmed to USD and GBP")

        return [
            Release(
                1, "a good model", "  The churn model 1.0.0 as committed: AUC 0.84 on the holdout set.",
                ids[0], 0, {"test": ids[0], "prod": ids[0]}, lambda: None,
            ),
            Release(
                2, "a degraded model",
                "  A broken training run (labels shuffled) produces model 1.1.0. The test gate must stop it\n"
                "  on the test node and put release 1 back there; prod must keep release 1.",
                ids[1], 3, {"test": ids[0], "prod": ids[0]}, degrade,
            ),
            Release(
                3, "passes on test, breaks on prod",
                "  Model 1.2.0 is good, but the release also trims the exchange-rate table to the\n"
                "  currencies the test data uses. Prod bills in EUR (a prod-only local variable), so its\n"
                "  smoke test fails: mlcd must roll prod back to release 1 and verify it (smoke re-run),\n"
                "  then put test back to release 1 too (on_failure: earlier environments roll back).",
                ids[2], 4, {"test": ids[0], "prod": ids[0]}, trim_rates,
            ),
        ]  # fmt: skip

    def summary(self, releases: list[Release]) -> bool:
        """Print per-environment state and where the reports are; True if every release behaved."""
        print(f"\n{RULE}\nSummary\n{RULE}")
        for release in releases:
            mark = "ok  " if not release.problems and release.exit_code is not None else "FAIL"
            print(f"  [{mark}] release {release.number} ({release.bundle_id}, {release.title}): "
                  f"exit {release.exit_code}, expected {release.expected_exit}")  # fmt: skip
        print("\n  Active bundle per environment (read from the nodes):")
        for env in ("test", "prod"):
            print(f"    {env:<5} {self.active_bundle(env) or '(none)'}")
        print("\n  What a Jenkins user would see (kept after the run):")
        for release in releases:
            out_dir = self.out / f"release-{release.number}"
            if not out_dir.is_dir():
                continue
            print(f"    release {release.number}: {_rel(out_dir)}/")
            print(f"      page   {_rel(out_dir / 'reports' / 'index.html'):<46} the release page (open it first)")
            for path in sorted(out_dir.glob("reports/**/*.xml")):
                print(f"      JUnit  {_rel(path):<46} {_junit_digest(path)}")
            for path in sorted(out_dir.glob("reports/**/*.html")):
                print(f"      HTML   {_rel(path)}")
            audit = out_dir / "audit.jsonl"
            if audit.is_file():
                print(f"      audit  {_rel(audit):<46} {_audit_digest(audit)}")
            print(f"      stages {_rel(out_dir / 'pipeline.json')} and <stage>-<env>.json next to it")
        self.delivery()
        return all(not r.problems and r.exit_code is not None for r in releases)


    def delivery(self) -> None:
        """Print the delivery metrics of the releases (`mlcd report delivery` over their audit trails)."""
        folder = self.out / "delivery"
        print("\n  Delivery metrics of these releases (mlcd report delivery):")
        done = subprocess.run(
            [sys.executable, "-m", "mlcd", "report", "delivery", "--audit", str(self.out),
             "--out-dir", str(folder)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        for text in (done.stdout + done.stderr).splitlines():
            print(f"    {text}")


EXIT_MEANING = {0: "success", 3: "quality gate failed", 4: "rolled back, verified"}


def _junit_digest(path: Path) -> str:
    """'2 tests, 1 failed (TEST_X)' from a JUnit XML file."""
    try:
        root = etree.parse(str(path)).getroot()
    except (OSError, etree.XMLSyntaxError):
        return "(unreadable)"
    cases = list(root.iter("testcase"))
    failed = [
        c.get("name", "?") for c in cases if c.find("failure") is not None or c.find("error") is not None
    ]
    count = f"{len(cases)} test{'' if len(cases) == 1 else 's'}"
    if not failed:
        return f"{count}, all passed"
    return f"{count}, {len(failed)} failed ({', '.join(failed)})"


def _audit_digest(path: Path) -> str:
    """The per-environment deployment outcomes recorded in an audit trail."""
    outcomes: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("operation") == "deployment":
            outcomes[str(record.get("environment"))] = str(record.get("outcome"))
    if not outcomes:
        return "no deployment records"
    return "deployments: " + ", ".join(f"{env} {outcome}" for env, outcome in outcomes.items())


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 only if all three releases behaved as expected on the nodes."""
    parser = argparse.ArgumentParser(description="mlcd end to end on local stand-in DSS nodes")
    parser.add_argument(
        "--out-dir", type=Path, default=REPO / "demo-out", help="wiped at start (default: demo-out)"
    )
    args = parser.parse_args(argv)
    out: Path = args.out_dir.resolve()
    signal.signal(signal.SIGTERM, _on_sigterm)
    started = time.monotonic()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    print(f"mlcd demo: release the churn-prediction project three times, design -> test -> prod\n"
          f"  output:      {_rel(out)}/ (wiped at start, kept after the run)")  # fmt: skip
    demo = Demo(out)
    releases: list[Release] = []
    try:
        demo.start_nodes()
        demo.write_config()
        releases = demo.releases()
        for release in releases:
            demo.run_release(release)
        ok = demo.summary(releases)
    except KeyboardInterrupt:
        print("\ndemo: interrupted; stopping the nodes", file=sys.stderr)
        return 130
    except DemoError as exc:
        print(f"\ndemo: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"\ndemo: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        demo.stop_nodes()
    took = time.monotonic() - started
    if ok:
        print(f"\nmlcd demo: all three releases behaved as expected ({took:.0f} s). Nodes stopped.")
        return 0
    print(f"\nmlcd demo: FAILED: some releases did not behave as expected ({took:.0f} s). Nodes stopped.")
    return 1


if __name__ == "__main__":
    sys.exit(main())
