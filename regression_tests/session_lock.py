"""One live session per session folder: a lock file holding the session's pid.

Two sessions given the same folder (the same --session-dir, or --run-id) would write into each
other's duck.db and reports. The lock is taken with O_EXCL when the session starts, so of two
sessions started at once exactly one gets the folder; a lock left by a killed session (its pid
gone) is taken over.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

LOCK_FILE = ".live-tests.lock"


def lock_holder(session_dir: Path) -> int | None:
    """The pid of the live session using the folder; None when no live process holds its lock."""
    try:
        pid = int((session_dir / LOCK_FILE).read_text().strip() or 0)
    except (OSError, ValueError):
        return None
    if pid <= 0 or pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        return pid
    return pid


def in_use_error(session_dir: Path, pid: int) -> pytest.UsageError:
    return pytest.UsageError(
        f"session folder {session_dir} is in use by a live session (pid {pid}): pass another --session-dir or --run-id"
    )


def acquire(session_dir: Path) -> Path:
    """Take the folder's lock (creating the folder); a pytest.UsageError if a live session holds it."""
    session_dir.mkdir(parents=True, exist_ok=True)
    lock = session_dir / LOCK_FILE
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            pid = lock_holder(session_dir)
            if pid is not None:
                raise in_use_error(session_dir, pid) from None
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()  # left by a killed session
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        return lock
    pid = lock_holder(session_dir)
    raise in_use_error(session_dir, pid or 0)


def release(lock: Path) -> None:
    """Remove the lock if this process holds it."""
    with contextlib.suppress(OSError, ValueError):
        if int(lock.read_text().strip()) == os.getpid():
            lock.unlink()
