"""Which commands the collected tests need, and the order their executions are submitted in.

The suite runs every needed command in one batch (see RegressionSession.plan), so the order is the
makespan: the longest commands first, each control before its target (in cache mode the target
waits for the control's recording), and the reads' second control runs (the noise baseline) last,
since they too wait for the control.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import pytest

from live_tests.models import Command

# Fixture of conftest.py -> the command it runs. A fixture or test parametrized by a Command (the
# `read` fixture's `read_command`, test_performance's `any_command`) runs the command of its parameter.
FIXTURE_COMMANDS = {"spec": Command.SPEC, "check": Command.CHECK, "discover": Command.DISCOVER}
LONGEST_FIRST = (Command.READ, Command.READ_WITH_STATE, Command.DISCOVER, Command.CHECK, Command.SPEC)


def commands_used(items: Iterable[pytest.Item]) -> set[Command]:
    """The commands the items' fixtures run (the fixture closure: indirect use counts too)."""
    used: set[Command] = set()
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        used |= {command for name, command in FIXTURE_COMMANDS.items() if name in names}
        callspec = getattr(item, "callspec", None)
        if callspec is not None:
            used |= {value for value in callspec.params.values() if isinstance(value, Command)}
    return used


def submission_order(commands: Collection[Command]) -> list[Command]:
    """`commands`, longest first."""
    return [command for command in LONGEST_FIRST if command in commands]
