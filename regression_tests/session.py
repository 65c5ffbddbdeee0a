"""One regression session: the control and target executions of each command, run once, all at once.

The plugin plans the commands the collected tests need (`plan`); the first test that needs any of
them runs the whole plan in one batch, on both versions, at most --max-parallel executions at a
time (through the pipeline, behind the proxy unless disabled). Every other test of the session
reuses the results and the comparisons computed from them. A command that was not planned runs
when a test first asks for it. All messages land in the session's duck.db.

Noise baseline: a read command also runs the control a second time (`<version>+rerun`, after the
first has started; in cache mode answered from the control's recording like the target). Every
path that differs between the two control runs, or that holds the control's own clock, is
run-time noise: the record, state and schema comparisons leave it out, and the report lists it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
import duckdb
import orjson

from live_tests.compare import Finding, RecordsComparison, compare_records, find_volatile_paths
from live_tests.compare.volatility import NoiseBaseline
from live_tests.docker_engine import EngineError, connect, ensure_image, remove_leftovers
from live_tests.models import (
    Command,
    ConnectorImage,
    ConnectorInputs,
    ExecutionInputs,
    ExecutionKey,
    ExecutionResult,
)
from live_tests.pipeline import run_executions
from live_tests.proxy import ProxySessionCA
from live_tests.regression_tests.schedule import submission_order
from live_tests.regression_tests.settings import SuiteSettings
from live_tests.secrets import SecretMasker, secret_values
from live_tests.sql import table_exists
from live_tests.store.session_db import MEMORY_LIMIT_MB, SessionDatabase

if TYPE_CHECKING:
    from live_tests.compare.ignores import IgnoredPath

ARTIFACTS_DIR = "command_execution_artifacts"
RERUN_LABEL = "rerun"
DB_FILE = "duck.db"


@dataclass(frozen=True)
class ExecutionPair:
    """The control and target executions of one command."""

    command: Command
    control: ExecutionResult
    target: ExecutionResult
    rerun: ExecutionResult | None = None  # the control's second run (noise baseline), for reads

    @property
    def control_key(self) -> ExecutionKey:
        return self.control.inputs.key

    @property
    def target_key(self) -> ExecutionKey:
        return self.target.inputs.key

    def failures(self) -> list[str]:
        """One line per side that did not succeed."""
        lines = []
        for side, result in (("control", self.control), ("target", self.target)):
            if not result.success:
                connector, version, command = result.inputs.key
                lines.append(f"{side} {connector}:{version} `{command}` {result.failure_reason}")
        return lines


class RegressionSession:
    def __init__(self, settings: SuiteSettings) -> None:
        self.settings = settings
        self.session_dir = settings.session_dir
        self.db_path = settings.session_dir / DB_FILE
        self._client: docker.DockerClient | None = None
        self._proxy_ca: ProxySessionCA | None = None
        self._pairs: dict[Command, ExecutionPair] = {}
        self._planned: list[Command] = []  # run together at the first pair()
        self.activity: str | None = None  # what the session runs right now, for the heartbeat
        self._con: duckdb.DuckDBPyConnection | None = None
        self._masker: SecretMasker | None = None
        self._records: dict[Command, RecordsComparison] = {}
        self._noise: dict[Command, NoiseBaseline] = {}
        self.accepted_diffs = settings.accepted_diffs
        # test name -> its findings, as judged (what --update-accepted-diffs writes).
        self.findings_seen: dict[str, list[Finding]] = {}
        self.started = False
        self.frozen = False  # set at the end (or on Ctrl-C): no more containers

    # --- setup -----------------------------------------------------------------------------

    def start(self) -> None:
        """Engine reachable, images present (proxy image built if needed); EngineError says what to do."""
        client = connect()
        for image in (self.settings.control, self.settings.target):
            ensure_image(client, image.reference)
        if self.settings.proxy.enabled:
            from live_tests.images import ImageBuildError, ensure_base_image, ensure_proxy_image

            try:
                ensure_proxy_image(client, self.settings.proxy.image, ensure_base_image(client))
            except ImageBuildError as exc:
                raise EngineError(str(exc)) from None
        self._client = client
        self.session_dir.mkdir(parents=True, exist_ok=True)
        self.settings.write_catalog()
        self.started = True

    # --- executions ------------------------------------------------------------------------

    def artifacts_dir(self, command: Command, version: str) -> Path:
        return self.session_dir / ARTIFACTS_DIR / self.settings.connector / command.value / version

    def skip_reason(self, command: Command) -> str | None:
        """Why `command` is not run in this session (its tests skip); None: it runs."""
        missing = self.settings.inputs_missing(command)
        if missing:
            return f"not run: {missing}"
        if command is Command.READ_WITH_STATE and not self.settings.should_read_with_state:
            return "not run: --should-read-with-state=false (the default without --state-path)"
        return None

    def plan(self, commands: Iterable[Command]) -> list[Command]:
        """Run `commands` (those of them that can run) together at the first `pair()`; the plan, in order.

        The spec joins any plan: the secrets to mask come from it (see `masker`).
        """
        runnable = {c for c in commands if self.skip_reason(c) is None}
        if runnable:
            runnable.add(Command.SPEC)
        self._planned = submission_order(runnable - self._pairs.keys())
        return list(self._planned)

    def pair(self, command: Command) -> ExecutionPair:
        """Both executions of `command`; the first call runs the planned batch (with `command` if it is not in it)."""
        if command not in self._pairs:
            batch = {*self._planned, command}
            if self.settings.config_path is not None and command is not Command.SPEC:
                # The secrets to mask come from the spec: know them before any test uses a result,
                # so that masking never has to run containers (and reopen duck.db) mid-test.
                batch.add(Command.SPEC)
            try:
                self._run(submission_order(batch - self._pairs.keys()))
            except Exception as exc:
                self._planned = []  # not retried whole: a later test runs its own command
                if _during_interrupt(exc):
                    raise KeyboardInterrupt from exc  # e.g. a second Ctrl-C broke the cleanup of the first
                raise
            self._planned = [c for c in self._planned if c not in self._pairs]
            _ = self.masker
        return self._pairs[command]

    def ran(self, command: Command) -> bool:
        return command in self._pairs

    def _run(self, commands: list[Command]) -> None:
        """One `run_executions` batch: every control and target, longest command first, reruns last."""
        if self._client is None or self.frozen:
            names = ", ".join(f"`{c.value}`" for c in commands)
            raise RuntimeError(f"the regression session cannot run {names} now (not started or finished)")
        s = self.settings
        runs = [(command, image, "") for command in commands for image in (s.control, s.target)]
        if s.noise_baseline:
            # Last: each waits for (in cache mode, is answered from) its control, queued well before it.
            reads = (Command.READ, Command.READ_WITH_STATE)
            runs += [(command, s.control, RERUN_LABEL) for command in commands if command in reads]
        executions = [self._execution(command, image, label) for command, image, label in runs]
        if s.proxy.enabled and self._proxy_ca is None:
            self._proxy_ca = ProxySessionCA.generate(s.run_id)
        self._close_query_connection()  # the loader needs the database file to itself
        names = ", ".join(c.value for c in commands)
        self.activity = f"running {len(executions)} executions ({names}), at most {s.max_parallel} at a time"
        try:
            with SessionDatabase(self.db_path) as db:
                results = run_executions(
                    self._client, db, executions, max_parallel=s.max_parallel, proxy=s.proxy, proxy_ca=self._proxy_ca
                )
        finally:
            self.activity = None
        by_run = dict(zip(runs, results, strict=True))
        for command in commands:
            self._pairs[command] = ExecutionPair(
                command,
                by_run[(command, s.control, "")],
                by_run[(command, s.target, "")],
                by_run.get((command, s.control, RERUN_LABEL)),
            )
            self._records.pop(command, None)
            self._noise.pop(command, None)

    def _execution(self, command: Command, image: ConnectorImage, label: str) -> ExecutionInputs:
        s = self.settings
        given = {"config": s.config_path, "catalog": s.catalog_path, "state": s.state_path}
        return ExecutionInputs(
            connector=image,
            command=command,
            inputs=ConnectorInputs(**{kind: path for kind, path in given.items() if kind in command.required_inputs}),
            artifacts_dir=self.artifacts_dir(command, f"{image.version}+{label}" if label else image.version),
            run_id=s.run_id,
            timeout_s=s.timeout_s,
            label=label,
            limits=s.limits,
        )

    # --- queries ---------------------------------------------------------------------------

    def query(self) -> duckdb.DuckDBPyConnection:
        """The connection comparisons and checks query (duck.db; created empty if nothing ran yet)."""
        if self._con is None:
            if not self.db_path.exists():
                SessionDatabase(self.db_path).close()  # creates the tables the report expects
            self._con = duckdb.connect(str(self.db_path), config={"memory_limit": f"{MEMORY_LIMIT_MB}MB"})
            self._con.execute("SET enable_progress_bar = false")  # pytest's output is not a terminal UI
        return self._con

    def _close_query_connection(self) -> None:
        if self._con is not None:
            with contextlib.suppress(duckdb.Error):
                self._con.close()
            self._con = None

    def records_comparison(self, command: Command) -> RecordsComparison:
        """Control vs target records of a read command; computed once, shared by the read tests."""
        pair = self.pair(command)
        if command not in self._records:
            self._records[command] = compare_records(
                self.query(), pair.control_key, pair.target_key, self.primary_keys(), **self.ignored_kwargs(command)
            )
        return self._records[command]

    def ignored_paths(self, command: Command) -> list[IgnoredPath]:
        """The paths the record, state and schema comparisons of `command` leave out (the one place):
        the user's --ignore-field paths and the run-time noise the control's runs show."""
        return [*self.settings.ignored_fields, *self.noise_baseline(command).volatile]

    def noise_baseline(self, command: Command) -> NoiseBaseline:
        """The volatile paths of a read command's control (none for other commands); computed once."""
        if command not in (Command.READ, Command.READ_WITH_STATE):
            return NoiseBaseline(command.value, "not a read", [])
        if command not in self._noise:
            self._noise[command] = self._find_noise(self.pair(command))
        return self._noise[command]

    def noise_baselines(self) -> list[NoiseBaseline]:
        """The noise baselines of the reads that ran, for the report."""
        return [self.noise_baseline(c) for c in (Command.READ, Command.READ_WITH_STATE) if self.ran(c)]

    def _find_noise(self, pair: ExecutionPair) -> NoiseBaseline:
        control, rerun = pair.control, pair.rerun
        if not control.success:
            return NoiseBaseline(pair.command.value, "not looked for: the control failed", [])
        if rerun is None:
            how = "control run once (--no-noise-baseline): clock-stamped paths only"
        elif not rerun.success:
            how = f"control's second run failed ({rerun.failure_reason}): clock-stamped paths only"
        else:
            how = "control run twice"
        second = rerun if rerun is not None and rerun.success else None
        # Only the control's own clock: a target that starts stamping "now" where the control did not is a change.
        windows = {
            r.inputs.key: (r.started_at, r.finished_at)
            for r in (control, second)
            if r is not None and r.started_at is not None and r.finished_at is not None
        }
        volatile = find_volatile_paths(
            self.query(), control.inputs.key, second and second.inputs.key, windows, primary_keys=self.primary_keys()
        )
        return NoiseBaseline(pair.command.value, how, volatile)

    def ignored_kwargs(self, command: Command) -> dict[str, Any]:
        """`ignored=` for a comparison, only when there is something to ignore."""
        ignored = self.ignored_paths(command)
        return {"ignored": ignored} if ignored else {}

    def record_findings(self, test: str, findings: list[Finding]) -> None:
        self.findings_seen[test] = list(findings)

    def connection_status(self, key: ExecutionKey) -> tuple[str | None, str | None]:
        """(status, message) of the last CONNECTION_STATUS of an execution; (None, None) if it printed none."""
        if not self.has_table("connection_status"):
            return None, None
        row = (
            self.query()
            .execute(
                "SELECT status, message FROM connection_status WHERE connector = ? AND version = ? AND command = ?"
                " ORDER BY seq DESC LIMIT 1",
                list(key),
            )
            .fetchone()
        )
        return (row[0], row[1]) if row else (None, None)

    def configured_streams(self) -> list[dict[str, Any]]:
        catalog = self.settings.configured_catalog or {}
        return [s for s in catalog.get("streams", []) if isinstance(s, dict) and isinstance(s.get("stream"), dict)]

    def primary_keys(self) -> dict[str, list[list[str]]]:
        """stream -> primary key paths: the configured `primary_key`, else the source-defined one."""
        keys = {}
        for configured in self.configured_streams():
            key = configured.get("primary_key") or configured["stream"].get("source_defined_primary_key") or []
            paths = [[p] if isinstance(p, str) else list(p) for p in key]
            if paths:
                keys[configured["stream"]["name"]] = paths
        return keys

    def has_table(self, name: str) -> bool:
        return table_exists(self.query(), name)

    def last_message(self, table: str, column: str, key: ExecutionKey) -> Any:
        """The last message of a kind (spec, catalog) of one execution, parsed; None if there is none."""
        con = self.query()
        if not self.has_table(table):
            return None
        row = con.execute(
            f"SELECT {column}::VARCHAR FROM {table} WHERE connector = ? AND version = ? AND command = ?"
            " ORDER BY seq DESC LIMIT 1",
            list(key),
        ).fetchone()
        return orjson.loads(row[0]) if row and row[0] is not None else None

    # --- secrets ---------------------------------------------------------------------------

    @property
    def masker(self) -> SecretMasker:
        """Masks the config's secrets: values at `airbyte_secret` properties of the specs.

        Needs the specs: the spec executions run now if they have not (once per session; a planned
        batch always holds the spec).
        Without any spec, values of properties whose name looks secret are masked instead.
        """
        if self._masker is None:
            self._masker = SecretMasker()  # re-entrancy guard: masking while running spec masks nothing
            self._masker = self._build_masker()
        return self._masker

    def _build_masker(self) -> SecretMasker:
        if self.settings.config_path is None:
            return SecretMasker()
        config = orjson.loads(self.settings.config_path.read_bytes())
        specs: list[Any] = []
        if self.started:
            with contextlib.suppress(Exception):  # a failed spec run: fall back to property names
                if Command.SPEC not in self._pairs and not self.frozen:
                    self._run([Command.SPEC])  # the spec alone, not what else is planned
                # Interrupted, an unfinished batch may still have loaded the specs into duck.db.
                for image in (self.settings.control, self.settings.target):
                    spec = self.last_message("spec", "spec", self._execution(Command.SPEC, image, "").key)
                    if isinstance(spec, dict) and isinstance(spec.get("connectionSpecification"), dict):
                        specs.append(spec["connectionSpecification"])
        values: list[str] = []
        for spec in specs:
            values += secret_values(spec, config)
        if not specs:
            values += secret_values(None, config)
        return SecretMasker.of(values)

    def mask(self, text: str) -> str:
        return self.masker.mask_text(text)

    # --- teardown --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database and remove anything of this run left on the engine."""
        self._close_query_connection()
        if self._client is not None:
            with contextlib.suppress(Exception):
                remove_leftovers(self._client, self.settings.run_id)


def _during_interrupt(exc: BaseException) -> bool:
    """Whether `exc` was raised while a KeyboardInterrupt was being handled."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__context__
    return False
