"""Run several executions concurrently (bounded), each through runner (behind the run's proxy) -> store.

Ctrl-C (or SIGTERM turned into KeyboardInterrupt by the CLI) stops every connector of the run,
lets each execution flush and load what it got, removes whatever is left, and re-raises.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import docker
import duckdb
from docker.errors import DockerException

from live_tests.docker_engine import LABEL_ROLE, LABEL_RUN_ID, remove_leftovers
from live_tests.models import Command, ExecutionInputs, ExecutionResult, HttpCapture, RunOutcome
from live_tests.proxy import (
    MITM_FILE,
    ProxiedExecution,
    ProxyError,
    ProxyMode,
    ProxySessionCA,
    ProxySettings,
    RunProxy,
    attach_to_proxy,
)
from live_tests.runner import ProgressCallback, run_execution
from live_tests.store.execution_store import ExecutionStore
from live_tests.store.session_db import SessionDatabase

DEFAULT_MAX_PARALLEL = 2


@dataclass(frozen=True)
class _Control:
    """In cache mode: the execution whose recording answers the other versions of its command."""

    future: Future[ExecutionResult]
    artifacts_dir: Path


def run_executions(
    client: docker.DockerClient,
    db: SessionDatabase,
    executions: Sequence[ExecutionInputs],
    *,
    max_parallel: int = DEFAULT_MAX_PARALLEL,
    on_progress: ProgressCallback | None = None,
    proxy: ProxySettings | None = None,
    proxy_ca: ProxySessionCA | None = None,
) -> list[ExecutionResult]:
    """Results in the order of `executions`; every execution's artifacts are loaded into `db`.

    With `proxy`, one proxy serves every execution, each in a lane of its own (see live_tests.proxy).
    In cache mode the first execution of each command is the control: the others wait for it and
    are answered from its recording.
    """
    if not executions:
        return []
    cancel = threading.Event()
    run_ids = {inputs.run_id for inputs in executions}
    try:
        # The proxy is stopped (it writes what its lanes still hold) before anything is removed.
        with contextlib.ExitStack() as stack:
            run_proxy = None
            if proxy is not None:
                run_proxy = stack.enter_context(
                    RunProxy.running(
                        client,
                        proxy,
                        proxy_ca,
                        executions[0].run_id,
                        lanes=len(executions),
                        images=[inputs.connector.reference for inputs in executions],
                    )
                )
            return _run_all(client, db, executions, max_parallel, on_progress, proxy, run_proxy, cancel)
    finally:
        if cancel.is_set():
            for run_id in run_ids:
                remove_leftovers(client, run_id)


def _run_all(
    client: docker.DockerClient,
    db: SessionDatabase,
    executions: Sequence[ExecutionInputs],
    max_parallel: int,
    on_progress: ProgressCallback | None,
    proxy: ProxySettings | None,
    run_proxy: RunProxy | None,
    cancel: threading.Event,
) -> list[ExecutionResult]:
    def execute(inputs: ExecutionInputs, control: _Control | None = None) -> ExecutionResult:
        cache_from = None
        if control is not None:
            with contextlib.suppress(Exception):  # a failed control still leaves what it recorded
                control.future.result()
            cache_from = control.artifacts_dir / MITM_FILE
        try:
            store = ExecutionStore(db, inputs, http=proxy is not None)
        except duckdb.Error as exc:
            reason = str(exc).splitlines()[0]
            return ExecutionResult.compose(inputs, RunOutcome(error=f"could not open {db.path}: {reason}"))
        try:
            outcome, http = run_proxied(inputs, store, cache_from) if proxy is not None else (run(inputs, store), None)
        except BaseException:
            store.abort()
            raise
        output = store.finish(http)
        result = ExecutionResult.compose(inputs, outcome, output, http, cancelled=cancel.is_set())
        try:
            store.commit(result)
        except duckdb.Error as exc:
            # The JSONL artifacts are complete; only the queryable copy is missing.
            reason = f"could not load the messages into {db.path}: {str(exc).splitlines()[0]}"
            result = dataclasses.replace(result, error=result.error or reason)
        return result

    def run(inputs: ExecutionInputs, store: ExecutionStore, proxied: ProxiedExecution | None = None) -> RunOutcome:
        def progress(_: ExecutionInputs, records: int) -> None:
            if on_progress is not None:
                on_progress(inputs, records)  # the caller knows the execution by its own inputs

        attachment = proxied.attachment if proxied is not None else None
        return run_execution(
            client,
            attach_to_proxy(inputs, attachment) if attachment is not None else inputs,
            store.writer,
            prepare=attachment.prepare if attachment is not None else None,
            cancel=cancel,
            on_progress=progress,
        )

    def run_proxied(
        inputs: ExecutionInputs, store: ExecutionStore, cache_from: Path | None
    ) -> tuple[RunOutcome, HttpCapture | None]:
        assert run_proxy is not None
        try:
            with run_proxy.lane(inputs, cache_from) as proxied:
                outcome = run(inputs, store, proxied)
        except ProxyError as exc:
            return RunOutcome(error=str(exc)), exc.capture
        # A dead proxy fails the execution; when the proxy stage stopped the connector, that is why it ended.
        if proxied.failure is not None and (outcome.error is None or proxied.connector_stopped):
            outcome = dataclasses.replace(outcome, error=proxied.failure)
        return outcome, proxied.capture

    pool = ThreadPoolExecutor(max_workers=max(1, max_parallel), thread_name_prefix="execution")
    futures: list[Future[ExecutionResult]] = []
    controls: dict[Command, _Control] = {}
    caching = proxy is not None and proxy.enabled and proxy.mode is ProxyMode.CACHE
    try:
        # Submission order keeps this deadlock-free: a control is always queued before its targets.
        for inputs in executions:
            control = controls.get(inputs.command) if caching else None
            futures.append(pool.submit(execute, inputs, control))
            controls.setdefault(inputs.command, _Control(futures[-1], inputs.artifacts_dir))
        wait(futures)
    except BaseException:
        cancel.set()
        _kill_connectors(client, {inputs.run_id for inputs in executions})
        raise
    finally:
        # Also when interrupted: every started execution loads what it got before the database is closed.
        pool.shutdown(wait=True, cancel_futures=cancel.is_set())
    return [future.result() for future in futures]


def _kill_connectors(client: docker.DockerClient, run_ids: set[str]) -> None:
    """Stop the connectors so the executions end; proxies are left to flush their dumps.

    Never raises: the executions, seeing the cancel, also stop (and remove) their containers meanwhile.
    """
    for run_id in run_ids:
        filters = {"label": [f"{LABEL_RUN_ID}={run_id}", f"{LABEL_ROLE}=connector"]}
        with contextlib.suppress(DockerException):
            # Sparse: no inspect per container, which fails for one removed since the listing.
            for container in client.containers.list(filters=filters, sparse=True):
                with contextlib.suppress(DockerException):
                    container.kill()
