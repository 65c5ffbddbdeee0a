"""Run ids: the name of a run's folder and the label of its containers and networks."""

from __future__ import annotations

import re
import secrets
import time

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def default_run_id() -> str:
    """The Unix time and a random suffix: two runs started in the same second get two folders."""
    return f"{int(time.time())}-{secrets.token_hex(3)}"
