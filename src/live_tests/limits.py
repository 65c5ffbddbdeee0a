"""Resource limits for connector containers (`--memory-limit`, `--cpus`), parsed from user text."""

from __future__ import annotations

import re

from live_tests.models import ContainerLimits, InputError

_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmg]?)b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30}
# The engine refuses less (Docker's own minimum).
MIN_MEMORY_BYTES = 6 * 2**20


def parse_limits(memory: str | None, cpus: str | float | None, *, option_prefix: str = "--") -> ContainerLimits:
    """The limits from the options' text (None or "": no limit); InputError says what to fix."""
    return ContainerLimits(
        parse_memory(memory, f"{option_prefix}memory-limit") if memory else None,
        parse_cpus(cpus, f"{option_prefix}cpus") if cpus not in (None, "") else None,
    )


def parse_memory(text: str, option: str = "--memory-limit") -> int:
    """`512m`, `1.5g`, `2048k` or bytes -> bytes."""
    match = _MEMORY.match(text)
    if not match:
        raise InputError(f"{option} {text!r}: give a size such as 512m or 2g (units b, k, m, g)")
    size = int(float(match[1]) * _UNITS[match[2].lower()])
    if size < MIN_MEMORY_BYTES:
        raise InputError(f"{option} {text!r}: the engine needs at least 6m")
    return size


def parse_cpus(text: str | float, option: str = "--cpus") -> float:
    """`1.5` -> 1.5 CPUs (a share of the host's cores, as `docker run --cpus`)."""
    try:
        cpus = float(text)
    except ValueError:
        raise InputError(f"{option} {text!r}: give a number of CPUs such as 1.5") from None
    if not 0.01 <= cpus <= 1024:
        raise InputError(f"{option} {text!r}: give a number of CPUs from 0.01 up, such as 1.5")
    return cpus
