"""Where the offline test suite spends its time: the slowest tests and the time per file.

    make test-profile                                  # the whole offline suite
    python -m benchmarks.suite_profile tests/test_cli.py  # or some files (any pytest arguments)

Runs pytest once, in one process (`-m "not e2e"`, plus the arguments given), with a JUnit report, whose
per-test times include setup and teardown, then prints the 15 slowest tests, the time per
file and the suite's wall time. Prints figures; asserts nothing (the suite's own exit
status is passed through).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from xml.etree import ElementTree

from rich.console import Console
from rich.table import Table

SLOWEST = 15


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "junit.xml"
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "pytest", "-m", "not e2e", "-q", "-p", "no:cacheprovider",
                                 f"--junitxml={report}", "-o", "junit_duration_report=total", *argv], check=False)
        wall = time.perf_counter() - start
        if not report.is_file():
            print("error: pytest wrote no report; nothing to profile", file=sys.stderr)
            return result.returncode or 2
        cases = [(case.get("file") or case.get("classname", "").replace(".", "/") + ".py", case.get("name", ""),
                  float(case.get("time", 0))) for case in ElementTree.parse(report).iter("testcase")]
    console = Console()
    slowest = Table(title=f"The {SLOWEST} slowest tests (setup + call + teardown)")
    slowest.add_column("seconds", justify="right")
    slowest.add_column("test")
    for path, name, seconds in sorted(cases, key=lambda c: -c[2])[:SLOWEST]:
        slowest.add_row(f"{seconds:.2f}", f"{path}::{name}")
    console.print(slowest)
    per_file: dict[str, list[float]] = defaultdict(list)
    for path, _, seconds in cases:
        per_file[path].append(seconds)
    files = Table(title="Time per file")
    for column in ("seconds", "share", "tests", "file"):
        files.add_column(column, justify="left" if column == "file" else "right")
    total = sum(sum(times) for times in per_file.values()) or 1.0
    for path, times in sorted(per_file.items(), key=lambda item: -sum(item[1])):
        files.add_row(f"{sum(times):.1f}", f"{sum(times) / total:.0%}", str(len(times)), path)
    console.print(files)
    console.print(f"{len(cases)} tests; {total:.1f} s in tests, {wall:.1f} s wall in one process (collection and "
                  "start-up included; `make test` spreads the same tests over the cores)")
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
