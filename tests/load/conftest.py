"""Prints the load figures at the end of the session and keeps them in tests/artifacts/."""

from __future__ import annotations

from tests.load import RESULTS


def pytest_terminal_summary(terminalreporter) -> None:
    RESULTS.report(terminalreporter)
