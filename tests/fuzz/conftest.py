"""Counting what the fuzz tests ran, for one summary line at the end of the session.

Each `@given` test's inner function (`test.hypothesis.inner_test`, which hypothesis
lets a plugin wrap) is wrapped once to count its calls: every generated, explicit
(`@example`) and shrinking example. The session ends with

    fuzz: N examples over M targets, F failures
    fuzz (coverage-guided): N inputs over M targets, E edges covered

The second line counts what `test_guided.py` recorded in `guided`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest

_COUNTED = "_fuzz_counted"
examples: dict[str, int] = {}
failures: set[str] = set()
_running: list[str] = [""]  # the node id of the test being run
guided: dict[str, tuple[int, int]] = {}  # coverage-guided target -> (inputs run, edges)


def _counting(inner: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(inner)
    def counted(*args: Any, **kwargs: Any) -> Any:
        examples[_running[0]] = examples.get(_running[0], 0) + 1
        return inner(*args, **kwargs)

    setattr(counted, _COUNTED, True)
    return counted


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    handle = getattr(getattr(item, "obj", None), "hypothesis", None)
    if handle is None:
        return
    _running[0] = item.nodeid
    examples.setdefault(item.nodeid, 0)
    if not getattr(handle.inner_test, _COUNTED, False):
        handle.inner_test = _counting(handle.inner_test)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed and report.nodeid in examples:
        failures.add(report.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if guided:
        runs = sum(count for count, _ in guided.values())
        edges = sum(covered for _, covered in guided.values())
        terminalreporter.write_line(
            f"fuzz (coverage-guided): {runs} inputs over {len(guided)} targets, "
            f"{edges} edges covered"
        )
    if not examples:
        return
    total = sum(examples.values())
    if terminalreporter.verbosity > 0:
        for nodeid, count in sorted(examples.items()):
            terminalreporter.write_line(f"fuzz: {count:6d} examples  {nodeid}")
    terminalreporter.write_line(
        f"fuzz: {total} examples over {len(examples)} targets, {len(failures)} failures"
    )
