"""The quality bar as tests: no module over 600 lines, no function above radon grade C."""

from __future__ import annotations

from pathlib import Path

from radon.complexity import cc_rank, cc_visit

PACKAGE = Path(__file__).resolve().parents[3] / "python" / "mlcd"
MAX_LINES = 600


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_over_600_lines() -> None:
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"


def test_no_function_above_grade_c() -> None:
    complex_blocks = []
    for path in _modules():
        for block in cc_visit(path.read_text(encoding="utf-8")):
            if cc_rank(block.complexity) > "C":
                complex_blocks.append(
                    f"{path.relative_to(PACKAGE)}:{block.lineno} {block.name} "
                    f"({cc_rank(block.complexity)} {block.complexity})"
                )
    assert complex_blocks == [], "functions above radon grade C:\n" + "\n".join(complex_blocks)
