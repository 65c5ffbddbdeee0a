"""Run several executions concurrently (bounded), each through runner -> store.

Ctrl-C (or SIGTERM turned into KeyboardInterrupt by the CLI) stops every connector of the run,
lets each execution flush and load what it got, removes whatever is left, and re-raises.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import duckdb
from docker.errors import DockerException

from live_tests.docker_engine import LABEL_ROLE, LABEL_RUN_ID, remove_leftovers
from live_tests.models import Command, ExecutionInputs, ExecutionResult
from live_tests.proxy import (
    MITM_FILE,
    ProxyError,
    ProxyMode,
    ProxySessionCA,
    ProxySettings,
    attach_to_proxy,
    proxy_for_execution,
)
from live_tests.runner import ProgressCallback, run_execution
from live_tests.store.execution_load import ExecutionLoad
from live_tests.store.http_flows import load_http_flows
from live_tests.store.session_db import SessionDatabase

DEFAULT_MAX_PARALLEL = 2

Prepare = Callable[[Any], None]


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

    With `proxy`, each execution runs behind its own proxy (see live_tests.proxy). In cache mode
    the first execution of each command is the control: the others wait for it and are answered
    from its recording.
    """
    cancel = threading.Event()
    if proxy is not None and proxy.enabled and proxy_ca is None:
        proxy_ca = ProxySessionCA.generate(executions[0].run_id if executions else "run")

    def execute(inputs: ExecutionInputs, control: _Control | None = None) -> ExecutionResult:
        cache_from = None
        if control is not None:
            with contextlib.suppress(Exception):  # a failed control still leaves what it recorded
                control.future.result()
            cache_from = control.artifacts_dir / MITM_FILE
        try:
            load = ExecutionLoad(db, inputs)
        except duckdb.Error as exc:
            return ExecutionResult(inputs, error=f"could not open {db.path}: {str(exc).splitlines()[0]}")
        try:
            result = run_proxied(inputs, cache_from, load) if proxy is not None else run(inputs, inputs, load)
        except BaseException:
            load.abort()
            raise
        if cancel.is_set():
            result.interrupted = True
        try:
            load.finish(result)
            if proxy is not None:
                load_http_flows(db, inputs)
        except duckdb.Error as exc:
            # The JSONL artifacts are complete; only the queryable copy is missing.
            reason = str(exc).splitlines()[0]
            result.error = result.error or f"could not load the messages into {db.path}: {reason}"
        return result

    def run(
        inputs: ExecutionInputs, run_inputs: ExecutionInputs, load: ExecutionLoad, prepare: Prepare | None = None
    ) -> ExecutionResult:
        def progress(_: ExecutionInputs, records: int) -> None:
            if on_progress is not None:
                on_progress(inputs, records)  # the caller knows the execution by its own inputs

        result = run_execution(
            client, run_inputs, prepare=prepare, cancel=cancel, on_progress=progress, on_segment=load.add_segment
        )
        result.inputs = inputs
        return result

    def run_proxied(inputs: ExecutionInputs, cache_from: Path | None, load: ExecutionLoad) -> ExecutionResult:
        assert proxy is not None and (proxy_ca is not None or not proxy.enabled)
        try:
            with proxy_for_execution(client, inputs, proxy, proxy_ca, cache_from=cache_from) as attachment:  # type: ignore[arg-type]
                if attachment is None:
                    return run(inputs, inputs, load)
                return run(inputs, attach_to_proxy(inputs, attachment), load, attachment.prepare)
        except ProxyError as exc:
            return ExecutionResult(inputs, error=str(exc))

    pool = ThreadPoolExecutor(max_workers=max(1, max_parallel), thread_name_prefix="execution")
    futures: list[Future[ExecutionResult]] = []
    controls: dict[Command, _Control] = {}
    caching = proxy is not None and proxy.enabled and proxy.mode is ProxyMode.CACHE
    # Submission order keeps this deadlock-free: a control is always queued before its targets.
    for inputs in executions:
        control = controls.get(inputs.command) if caching else None
        futures.append(pool.submit(execute, inputs, control))
        controls.setdefault(inputs.command, _Control(futures[-1], inputs.artifacts_dir))
    try:
        wait(futures)
    except KeyboardInterrupt:
        cancel.set()
        run_ids = {inputs.run_id for inputs in executions}
        _kill_connectors(client, run_ids)
        pool.shutdown(wait=True, cancel_futures=True)
        for run_id in run_ids:
            remove_leftovers(client, run_id)
        raise
    pool.shutdown(wait=True)
    return [future.result() for future in futures]


def _kill_connectors(client: docker.DockerClient, run_ids: set[str]) -> None:
    """Stop the connectors so the executions end; proxies are left to flush their dumps."""
    for run_id in run_ids:
        filters = {"label": [f"{LABEL_RUN_ID}={run_id}", f"{LABEL_ROLE}=connector"]}
        for container in client.containers.list(filters=filters):
            with contextlib.suppress(DockerException):
                container.kill()
