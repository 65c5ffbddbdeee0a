"""What a test works on: one command's control and target executions, success already required.

Each fixture of conftest.py (`spec`, `check`, `discover`, `read`) is one of these runs; their
methods return the comparison or validation a test judges, e.g. `judge(read.records_content())`.
A method comparing both sides first requires that both succeeded; a method on the target alone
requires only the target. A control that failed makes the test `Inconclusive` (no baseline); a
target that failed where the control succeeded fails the test with both sides' reasons.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from live_tests.compare import (
    CatalogComparison,
    SpecComparison,
    compare_catalogs,
    compare_http_calls,
    compare_inferred_schemas,
    compare_invalid_lines,
    compare_performance,
    compare_spec,
    compare_states,
    compare_traces,
)
from live_tests.compare.diff import Comparison
from live_tests.models import Command, ExecutionKey, ExecutionResult
from live_tests.regression_tests import record_views
from live_tests.regression_tests.outcomes import Inconclusive
from live_tests.regression_tests.read_validation import (
    validate_primary_keys_not_null,
    validate_record_schemas,
    validate_states,
    validate_stream_statuses,
)
from live_tests.regression_tests.session import ExecutionPair, RegressionSession
from live_tests.regression_tests.validation import (
    Validation,
    validate_catalog,
    validate_secrets_marked,
    validate_spec,
)

# stderr lines shown per failed side.
_STDERR_LINES = 8


@dataclass
class CommandRun:
    session: RegressionSession
    pair: ExecutionPair

    @property
    def command(self) -> Command:
        return self.pair.command

    @property
    def control_key(self) -> ExecutionKey:
        return self.pair.control_key

    @property
    def target_key(self) -> ExecutionKey:
        return self.pair.target_key

    def both(self) -> tuple[ExecutionKey, ExecutionKey]:
        """Control and target keys, once both succeeded (else: inconclusive, or failed)."""
        self._require(self.pair.control, self.pair.target)
        return self.control_key, self.target_key

    def target(self) -> ExecutionKey:
        """The target's key, once it succeeded (a target-alone test: the control's failure does not matter)."""
        self._require(self.pair.target)
        return self.target_key

    def _require(self, *needed: ExecutionResult) -> None:
        failed = [r for r in needed if not r.success]
        if not failed:
            return
        control_failed = not self.pair.control.success
        lines = [f"`{self.command.value}` did not succeed:", *(f"  - {f}" for f in self.pair.failures())]
        for side, result in (("control", self.pair.control), ("target", self.pair.target)):
            if not result.success and result.stderr_tail.strip():
                tail = "\n".join(f"    {line}" for line in result.stderr_tail.strip().splitlines()[-_STDERR_LINES:])
                lines.append(f"  {side} stderr (last lines):\n{tail}")
        lines.append(f"Artifacts: {self.pair.target.inputs.artifacts_dir.parent}")
        text = self.session.mask("\n".join(lines))
        if control_failed:
            # Both failed, or the control alone: the target has nothing to be compared with.
            raise Inconclusive(f"inconclusive: the control failed, nothing to compare with. {text}", pytrace=False)
        pytest.fail(text, pytrace=False)

    def performance(self) -> Comparison:
        """Wall time, time to first record, records/s, memory, CPU and HTTP calls per record of both sides."""
        control, target = self.both()
        rerun = self.pair.rerun  # reads: the control's second run says how much the control alone varies
        baseline = rerun.inputs.key if rerun is not None and rerun.success else None
        return compare_performance(
            self.session.query(), control, target, tolerance=self.session.settings.perf_tolerance, baseline=baseline
        )

    def last_message(self, table: str, column: str, key: ExecutionKey) -> Any:
        return self.session.last_message(table, column, key)

    def subject(self, *keys: ExecutionKey) -> str:
        return " vs ".join(" ".join(k) for k in keys)


class SpecRun(CommandRun):
    def compatibility(self) -> SpecComparison:
        control, target = self.both()
        return compare_spec(self.session.query(), control, target)

    def validity(self) -> Validation:
        target = self.target()
        config_path = self.session.settings.config_path
        config = orjson.loads(config_path.read_bytes()) if config_path else None
        return validate_spec(self.last_message("spec", "spec", target), config, self.subject(target))

    def secrets_marked(self) -> Validation:
        target = self.target()
        return validate_secrets_marked(self.last_message("spec", "spec", target), self.subject(target))


class CheckRun(CommandRun):
    def connection_status(self) -> Validation:
        """Judged on the CONNECTION_STATUS each side printed (connectors exit 0 on a failed check)."""
        control, target = self.both()
        result = Validation("Connection check", self.subject(control, target))
        sides = (("control", control), ("target", target))
        statuses = {side: self.session.connection_status(key) for side, key in sides}
        for side, (status, message) in statuses.items():
            detail = f" ({message})" if message else ""
            result.overview.append(f"{side}: {status or 'no CONNECTION_STATUS message'}{detail}")
        c_status, c_message = statuses["control"]
        if c_status != "SUCCEEDED":
            why = f"{c_status or 'no CONNECTION_STATUS'}{f': {c_message}' if c_message else ''}"
            t_status = statuses["target"][0] or "no CONNECTION_STATUS"
            raise Inconclusive(
                self.session.mask(f"inconclusive: the control's check is {why} (target: {t_status})"), pytrace=False
            )
        t_status, t_message = statuses["target"]
        if t_status != "SUCCEEDED":
            result.add(
                "check_not_succeeded",
                f"target connection status is {t_status or 'missing'}{f': {t_message}' if t_message else ''}"
                " where the control's SUCCEEDED",
                control=c_status,
                target=t_status,
            )
        return result


class DiscoverRun(CommandRun):
    def catalogs(self) -> CatalogComparison:
        control, target = self.both()
        return compare_catalogs(self.session.query(), control, target)

    def catalog_validity(self) -> Validation:
        target = self.target()
        return validate_catalog(self.last_message("catalog", "catalog", target), self.subject(target))


class ReadRun(CommandRun):
    def _records(self) -> Any:
        self.both()
        return self.session.records_comparison(self.command)

    def record_counts(self) -> Comparison:
        return record_views.counts(self._records())

    def primary_keys(self) -> Comparison:
        return record_views.primary_keys(self._records())

    def records_content(self) -> Comparison:
        return record_views.content(self._records())

    def inferred_schemas(self) -> Comparison:
        control, target = self.both()
        return compare_inferred_schemas(self.session.query(), control, target, **self._ignored())

    def states(self) -> Comparison:
        control, target = self.both()
        incremental = [c["stream"]["name"] for c in self._configured() if c.get("sync_mode") == "incremental"]
        return compare_states(self.session.query(), control, target, incremental_streams=incremental, **self._ignored())

    def invalid_lines(self) -> Comparison:
        control, target = self.both()
        return compare_invalid_lines(self.session.query(), control, target)

    def traces(self) -> Comparison:
        control, target = self.both()
        return compare_traces(self.session.query(), control, target)

    def http_calls(self) -> Comparison:
        """What each side asked of the APIs, endpoint by endpoint; calls per record from their record counts."""
        control, target = self.both()
        records = {"control": sum(self.pair.control.records_per_stream.values()),
                   "target": sum(self.pair.target.records_per_stream.values())}  # fmt: skip
        return compare_http_calls(self.session.query(), control, target, records=records)

    def record_schemas(self) -> Validation:
        target = self.target()
        return validate_record_schemas(self.session.query(), target, self._configured())

    def primary_keys_not_null(self) -> Validation:
        target = self.target()
        return validate_primary_keys_not_null(self.session.query(), target, self.session.primary_keys())

    def states_emitted(self) -> Validation:
        target = self.target()
        return validate_states(self.session.query(), target, self._configured())

    def stream_statuses(self) -> Validation:
        target = self.target()
        return validate_stream_statuses(self.session.query(), target, self._configured())

    def _ignored(self) -> dict[str, Any]:
        return self.session.ignored_kwargs(self.command)

    def _configured(self) -> list[Mapping[str, Any]]:
        return list(self.session.configured_streams())


RUN_TYPES: dict[Command, type[CommandRun]] = {
    Command.SPEC: SpecRun,
    Command.CHECK: CheckRun,
    Command.DISCOVER: DiscoverRun,
    Command.READ: ReadRun,
    Command.READ_WITH_STATE: ReadRun,
}


def command_run(session: RegressionSession, command: Command) -> CommandRun:
    """The run of any command, for a test of every command (skipped when the command is not run)."""
    reason = session.skip_reason(command)
    if reason is not None:
        pytest.skip(reason)
    return RUN_TYPES[command](session, session.pair(command))
