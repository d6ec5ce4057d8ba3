"""Prints the load figures at the end of the session and keeps them in tests/artifacts/."""

from __future__ import annotations

import time

from tests.chaos import markdown_table
from tests.load import RESULT_COLUMNS, RESULTS
from tests.support import ROOT


def pytest_terminal_summary(terminalreporter) -> None:
    if not RESULTS:
        return
    table = markdown_table(RESULTS, RESULT_COLUMNS)
    terminalreporter.write_sep("=", "load results")
    terminalreporter.write_line(table)
    artifacts = ROOT / "tests" / "artifacts"
    artifacts.mkdir(exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    (artifacts / "load-results.md").write_text(f"Run at {stamp}\n\n{table}\n")
