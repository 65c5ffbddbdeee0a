"""Run several executions concurrently (bounded), each through runner -> store.

Ctrl-C (or SIGTERM turned into KeyboardInterrupt by the CLI) stops every connector of the run,
lets each execution flush and load what it got, removes whatever is left, and re-raises.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait

import docker
import duckdb
from docker.errors import DockerException

from live_tests.docker_engine import LABEL_ROLE, LABEL_RUN_ID, remove_leftovers
from live_tests.models import ExecutionInputs, ExecutionResult
from live_tests.runner import ProgressCallback, run_execution
from live_tests.store.session_db import SessionDatabase

DEFAULT_MAX_PARALLEL = 2


def run_executions(
    client: docker.DockerClient,
    db: SessionDatabase,
    executions: Sequence[ExecutionInputs],
    *,
    max_parallel: int = DEFAULT_MAX_PARALLEL,
    on_progress: ProgressCallback | None = None,
) -> list[ExecutionResult]:
    """Results in the order of `executions`; every execution's artifacts are loaded into `db`."""
    cancel = threading.Event()

    def execute(inputs: ExecutionInputs) -> ExecutionResult:
        result = run_execution(client, inputs, cancel=cancel, on_progress=on_progress)
        if cancel.is_set():
            result.interrupted = True
        try:
            db.load(result)
        except duckdb.Error as exc:
            # The JSONL artifacts are complete; only the queryable copy is missing.
            reason = str(exc).splitlines()[0]
            result.error = result.error or f"could not load the messages into {db.path}: {reason}"
        return result

    pool = ThreadPoolExecutor(max_workers=max(1, max_parallel), thread_name_prefix="execution")
    futures = [pool.submit(execute, inputs) for inputs in executions]
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
