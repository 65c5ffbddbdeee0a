"""Sessions without Docker: unique default run ids, the session folder's lock, the plugin inert where not asked for."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from live_tests.regression_tests.session_lock import LOCK_FILE, acquire, lock_holder, release
from live_tests.regression_tests.settings import parse_settings
from live_tests.run_ids import RUN_ID, default_run_id
from tests.conftest import DEMO_DIR, REPO

pytest_plugins = ("pytester",)


def test_default_run_ids_are_unique_within_a_second() -> None:
    ids = [default_run_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(RUN_ID.match(i) for i in ids)
    assert len({i.split("-")[0] for i in ids}) <= 2  # the Unix time, then the random part


@pytest.fixture
def other_live_process() -> Iterator[int]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


def test_lock_refuses_a_live_session_and_takes_over_a_dead_ones(tmp_path: Path, other_live_process: int) -> None:
    folder = tmp_path / "session"
    lock = acquire(folder)
    assert lock.read_text() == f"{os.getpid()}\n" and lock_holder(folder) is None  # our own lock
    release(lock)
    assert not lock.exists()

    lock.write_text(f"{other_live_process}\n")
    with pytest.raises(pytest.UsageError) as raised:
        acquire(folder)
    assert str(raised.value) == (
        f"session folder {folder} is in use by a live session (pid {other_live_process}):"
        " pass another --session-dir or --run-id"
    )
    release(lock)  # not ours: kept
    assert lock.read_text() == f"{other_live_process}\n"

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(dead.stdout)  # a killed session's lock
    assert acquire(folder).read_text() == f"{os.getpid()}\n"


def test_options_refuse_a_folder_in_use(tmp_path: Path, other_live_process: int) -> None:
    folder = tmp_path / "session"
    folder.mkdir()
    (folder / LOCK_FILE).write_text(f"{other_live_process}\n")
    values = {"connector_image": "live-tests/source-demo", "control_version": "1.0.0", "target_version": "2.0.0"}
    with pytest.raises(pytest.UsageError, match=rf"session folder {folder} is in use by a live session \(pid \d+\)"):
        parse_settings(values | {"session_dir": str(folder)})
    settings = parse_settings(values)  # the default folder is the run id's
    assert settings.session_dir.name == f"session_{settings.run_id}" and "-" in settings.run_id


def test_plugin_is_inert_in_other_pytest_runs(pytester: pytest.Pytester) -> None:
    """The pytest11 entry point loads the plugin into every run: without the suite's options it does nothing."""
    pytester.makepyfile(test_other="def test_other():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--trace-config")
    result.assert_outcomes(passed=1)
    assert "live_tests.regression_tests.plugin" in result.stdout.str()  # loaded...
    assert "plugins:" in result.stdout.str() and "live-tests-0" in result.stdout.str()
    assert " live-tests " not in result.stdout.str() and "Session folder" not in result.stdout.str()  # ...and silent


def test_suite_without_options_and_help(tmp_path: Path) -> None:
    """Collecting the suite means running it: its required options are asked for; -h lists them."""
    base = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    for target in (["regression_tests"], ["--pyargs", "live_tests.regression_tests"]):
        run = subprocess.run([*base, *target], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert run.returncode == 4, run.stdout + run.stderr
        assert run.stderr.strip() == "ERROR: --connector-image is required, e.g. --connector-image=airbyte/source-faker"
    helped = subprocess.run([*base, "--pyargs", "live_tests.regression_tests", "-h"], capture_output=True, text=True)
    assert helped.returncode == 0 and "--control-version=CONTROL_VERSION" in helped.stdout
    # Without the entry point (a bare checkout), conftest.py registers the plugin once.
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    bare = subprocess.run([*base, "regression_tests", "--co", "-q", f"--config-path={DEMO_DIR / 'config.json'}"],
                          cwd=REPO, capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert bare.returncode == 4 and "--connector-image is required" in bare.stderr, bare.stdout + bare.stderr
