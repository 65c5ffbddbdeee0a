"""The suite plans its executions from the collected tests and starts them all at once, not on first use."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import docker
import duckdb
import pytest

from live_tests.models import Command
from live_tests.regression_tests.session import RegressionSession
from live_tests.regression_tests.settings import parse_settings
from tests.conftest import DEMO_DIR
from tests.test_regression_suite import DEMO_INPUTS, demo_args, run_suite

SLOW_DEMO = "live-tests-test/slow-demo"
SLOW_S = 4  # each execution lasts at least this long: longer than starting a dozen containers takes
# A wrapper around the demo connector that waits before it starts, whatever the command.
SLOW_DOCKERFILE = f"""
ARG SOURCE
FROM ${{SOURCE}}
ENTRYPOINT ["sh", "-c", "sleep {SLOW_S}; exec python3 -m live_tests.demo.source_demo \\"$@\\"", "slow-demo"]
"""
ALL_EXECUTIONS = {
    (command, version)
    for command in ("spec", "check", "discover", "read", "read-with-state")
    for version in ("1.0.0", "2.0.0", *(["1.0.0+rerun"] if command.startswith("read") else []))
}


def _executions(session_dir: Path) -> list[tuple[str, str, datetime, datetime]]:
    with duckdb.connect(str(session_dir / "duck.db"), read_only=True) as con:
        return con.execute("SELECT command, version, started_at, finished_at FROM executions").fetchall()


def _session(tmp_path: Path, *inputs: Path) -> RegressionSession:
    given = dict(zip(("config_path", "catalog_path", "state_path"), map(str, inputs), strict=False))
    values = {"connector_image": "live-tests/source-demo", "control_version": "1.0.0", "target_version": "2.0.0"}
    return RegressionSession(parse_settings(values | given | {"session_dir": str(tmp_path / "s")}))


def test_plan_is_the_runnable_commands_longest_first_with_the_spec(tmp_path: Path) -> None:
    config, catalog, state = DEMO_DIR / "config.json", DEMO_DIR / "configured_catalog.json", DEMO_DIR / "state.json"
    everything = set(Command)
    assert _session(tmp_path, config, catalog, state).plan(everything) == [
        Command.READ, Command.READ_WITH_STATE, Command.DISCOVER, Command.CHECK, Command.SPEC
    ]  # fmt: skip
    # Without a state, read-with-state is not run (its tests skip); the spec joins any plan (the masker).
    assert _session(tmp_path, config, catalog).plan({Command.READ_WITH_STATE, Command.CHECK}) == [
        Command.CHECK,
        Command.SPEC,
    ]
    assert _session(tmp_path, config).plan(everything) == [Command.DISCOVER, Command.CHECK, Command.SPEC]
    assert _session(tmp_path).plan({Command.CHECK, Command.READ}) == []  # nothing can run without a config
    assert _session(tmp_path, config).plan(set()) == []


@pytest.fixture(scope="module")
def slow_demo(docker_client: docker.DockerClient, demo_images: tuple[str, str]) -> Iterator[str]:
    for image in demo_images:
        version = image.rsplit(":", 1)[1]
        docker_client.images.build(
            fileobj=io.BytesIO(SLOW_DOCKERFILE.encode()),
            tag=f"{SLOW_DEMO}:{version}",
            buildargs={"SOURCE": image},
            rm=True,  # no intermediate container left behind
            forcerm=True,
        )
    yield SLOW_DEMO
    for image in demo_images:
        docker_client.images.remove(f"{SLOW_DEMO}:{image.rsplit(':', 1)[1]}", noprune=True)


@pytest.mark.docker
def test_every_needed_command_starts_before_any_finishes(slow_demo: str, tmp_path: Path) -> None:
    """With room for all twelve executions, all are under way before the first test has a result."""
    args = [f"--connector-image={slow_demo}", "--control-version=1.0.0", "--target-version=2.0.0", *DEMO_INPUTS]
    run = run_suite(*args, "--disable-proxy", "--max-parallel=12", session_dir=tmp_path / "session")
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]  # the demo's differences
    executions = _executions(run.session_dir)
    assert {(command, version) for command, version, *_ in executions} == ALL_EXECUTIONS
    assert len(executions) == len(ALL_EXECUTIONS)  # each ran once
    last_start = max(started for *_, started, _ in executions)
    first_finish = min(finished for *_, finished in executions)
    assert last_start < first_finish, sorted(executions, key=lambda e: e[2])


@pytest.mark.docker
def test_only_the_selected_tests_commands_run(demo_images: tuple[str, str], tmp_path: Path) -> None:
    """-k test_spec: the spec alone; -k test_check (via `live-tests regression --max-parallel`): the check and
    the spec (the secrets to mask), nothing else."""
    spec = run_suite(
        *demo_args("1.0.0", "2.0.0", *DEMO_INPUTS), "--disable-proxy", "-k", "test_spec", session_dir=tmp_path / "spec"
    )
    assert spec.returncode == 0, spec.stdout[-3000:] + spec.stderr[-3000:]
    assert sorted((c, v) for c, v, *_ in _executions(spec.session_dir)) == [("spec", "1.0.0"), ("spec", "2.0.0")]
    check = run_suite(
        *demo_args("1.0.0", "2.0.0", *DEMO_INPUTS),
        "--disable-proxy",
        "--max-parallel",
        "1",
        "--",
        "-k",
        "test_check",
        session_dir=tmp_path / "check",
        via_cli=True,
    )
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]
    assert check.outcomes() == {"test_check_succeeds": "passed"}
    executions = sorted(_executions(check.session_dir), key=lambda e: e[2])
    assert sorted((c, v) for c, v, *_ in executions) == [
        ("check", "1.0.0"),
        ("check", "2.0.0"),
        ("spec", "1.0.0"),
        ("spec", "2.0.0"),
    ]
    # One at a time, the longest first: each starts after the one before it finished.
    assert [c for c, *_ in executions] == ["check", "check", "spec", "spec"]
    assert all(earlier[3] <= later[2] for earlier, later in itertools.pairwise(executions))


class _Collected:
    """A plugin keeping the items a pytest run collected (after -k)."""

    items: list[pytest.Item]

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.items = list(session.items)


@pytest.mark.parametrize(
    ("keyword", "expected"),
    [
        ("test_spec", {Command.SPEC}),
        ("test_catalogs", {Command.DISCOVER}),
        ("test_records_are_the_same", {Command.READ, Command.READ_WITH_STATE}),
        ("test_performance and check", {Command.CHECK}),  # a fixture parametrized by the command
        ("test_performance", set(Command)),
        ("nothing", set()),
    ],
)
def test_commands_used_by_the_selected_tests(tmp_path: Path, keyword: str, expected: set[Command]) -> None:
    from live_tests.regression_tests.plugin import suite_dir
    from live_tests.regression_tests.schedule import commands_used

    collected = _Collected()
    args = [str(suite_dir()), "--collect-only", "-q", "-p", "no:cacheprovider", "-k", keyword]
    args += [*demo_args("1.0.0", "2.0.0", *DEMO_INPUTS), f"--session-dir={tmp_path / 's'}"]
    assert pytest.main(args, plugins=[collected]) in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
    assert commands_used(collected.items) == expected
