"""`make bench`: measure mlcd against dataikuapi and the physical limit; write bench/results/latest.md.

Usage: ``python bench/run.py [--only NAME,...] [--quick] [--out PATH]`` (names: see ALL).
``--quick`` (for trying the suite) uses small sizes, few repetitions and short scenarios;
its figures are not the ones to quote. Every stand-in node and child process a
benchmark starts is stopped before it returns. Methodology: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from benchlib import BENCH_DIR, WORK, Section, Verdict, load_average, machine_info, table

ALL = ("transfer", "waiting", "startup", "pipeline", "scale", "apiload", "fleet", "imports")


def _section(name: str, quick: bool) -> Section:
    if name == "transfer":
        import transfer

        if quick:
            return transfer.run(["100 MiB"], reps=1)
        return transfer.run(["100 MiB", "1 GiB"], reps=5, reps_small=5)
    if name == "waiting":
        import waiting

        return waiting.run(max_s=8.0 if quick else 60.0, reps=1 if quick else 2)
    if name == "startup":
        import startup

        return startup.run(runs=5 if quick else 30)
    if name == "pipeline":
        import pipeline

        return pipeline.run_overhead(reps=1 if quick else 5)
    if name == "scale":
        import pipeline

        return pipeline.run_scale([1, 3] if quick else [1, 5, 20])
    if name == "apiload":
        import apiload

        return apiload.run(seconds=3.0 if quick else 10.0, memory_requests=5_000 if quick else 100_000)
    if name == "fleet":
        import fleet

        return fleet.run_fleet([1, 3] if quick else [1, 5, 20, 50], reps=1 if quick else 5)
    if name == "imports":
        import fleet

        return fleet.run_imports(reps=2 if quick else 5)
    raise ValueError(name)


def render(info: dict[str, str], sections: list[Section], quick: bool, total_s: float) -> str:
    """The markdown of bench/results/latest.md."""
    lines = ["# mlcd benchmarks", ""]
    if quick:
        lines += ["**Quick run (`--quick`): reduced sizes and repetitions; do not quote these figures.**", ""]
    lines += ["Produced by `make bench` (`bench/run.py`); methodology in `docs/benchmarks.md`.", ""]
    lines += table(["machine", ""], [[k, v] for k, v in info.items()])
    lines += ["", f"Total benchmark time: {total_s:.0f} s.", "", "## Targets", ""]
    verdicts: list[Verdict] = [v for s in sections for v in s.verdicts]
    lines += table(
        ["benchmark", "target", "measured", "verdict"],
        [[v.benchmark, v.target, v.figure, v.cell()] for v in verdicts],
    )
    for s in sections:
        lines += ["", f"## {s.title}", "", f"(took {s.seconds:.0f} s)", ""]
        lines += s.body
        if s.notes:
            lines += [""] + [f"- {n}" for n in s.notes]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks and write the results file; exit 1 if one of them crashed."""
    parser = argparse.ArgumentParser(description="mlcd benchmarks (writes bench/results/latest.md)")
    parser.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    parser.add_argument("--quick", action="store_true", help="small sizes, few repetitions (smoke run)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "latest.md")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in ALL]
    if unknown:
        choices = ", ".join(ALL)
        print(f"bench: unknown benchmark(s) {', '.join(unknown)}: choose from {choices}", file=sys.stderr)
        return 2
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    info = machine_info()
    sections: list[Section] = []
    failed = False
    for name in names:
        print(f"bench: {name} ...", flush=True)
        t0 = time.perf_counter()
        load_before = load_average()
        runner: Callable[[str, bool], Section] = _section
        try:
            section = runner(name, args.quick)
        except Exception as exc:  # a crashed benchmark is reported, the others still run
            failed = True
            traceback.print_exc()
            section = Section(f"{name}: crashed")
            section.notes.append(f"the benchmark crashed: {type(exc).__name__}: {str(exc)[:300]}")
            section.verdicts.append(Verdict(name, "(all targets of this benchmark)", "crashed", None))
        section.seconds = section.seconds or (time.perf_counter() - t0)
        load = f"{load_before} -> {load_average()}"
        section.notes.append(f"load average (1/5/15 min) during this benchmark: {load}")
        print(f"bench: {name} done in {time.perf_counter() - t0:.0f}s", flush=True)
        for v in section.verdicts:
            print(f"  {v.target}: {v.figure} -> {v.cell().strip('*')}", flush=True)
        sections.append(section)
    info["load average at end (1/5/15 min)"] = load_average()
    text = render(info, sections, args.quick, time.perf_counter() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(args.out)
    print(f"bench: wrote {args.out}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
