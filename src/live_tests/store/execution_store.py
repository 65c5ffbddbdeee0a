"""The store stage for one execution: its stdout filed as it streams, then loaded into duck.db.

The store owns the message writer (the runner's stdout sink), the load of finished record
segments while the connector is still streaming (one DuckDB thread, beside the connector), and at
the end the small message kinds, the HTTP flows and the execution's row: all in one transaction,
committed once the pipeline has composed the result.

The writer files records without parsing them (see live_tests.store.message_writer). If DuckDB
finds a line that is not valid JSON, or the records land in other streams than the writer
counted, the transaction is rolled back and stdout.log is filed again with every line parsed,
then loaded in bulk: slower, and the same result as if the fast path had never been taken.
"""

from __future__ import annotations

import contextlib
import queue
import shutil
import threading
from collections import Counter

import duckdb

from live_tests.models import ExecutionInputs, ExecutionResult, HttpCapture, RecordsSegment, StoredOutput
from live_tests.store import http_flows
from live_tests.store.message_writer import SEGMENTS_DIR, MessageWriter, resplit
from live_tests.store.session_db import (
    MESSAGE_TABLES,
    SessionDatabase,
    delete_execution,
    insert_execution,
    insert_message_files,
    insert_messages,
)


class ExecutionStore:
    """Open before the connector starts; feed `writer` while it streams; `finish`, then `commit` or `abort`.

    `http`: the execution runs behind the proxy stage, whose capture `finish` loads too.
    """

    def __init__(self, db: SessionDatabase, inputs: ExecutionInputs, *, http: bool = False) -> None:
        self._db, self._inputs = db, inputs
        if http:
            db.create_tables(http_flows.SCHEMA)
        self._segments: queue.SimpleQueue[RecordsSegment | None] = queue.SimpleQueue()
        self._failed = False
        self._con = db.connection()
        self._con.execute("BEGIN TRANSACTION")
        self._open = True
        delete_execution(self._con, inputs.key)
        self._thread = threading.Thread(target=self._insert_segments, name=f"load-{'/'.join(inputs.key)}", daemon=True)
        self._thread.start()
        self.writer = MessageWriter(inputs.artifacts_dir, self._segments.put)

    def _insert_segments(self) -> None:
        while (segment := self._segments.get()) is not None:
            if not self._failed:
                try:
                    self._db.make_room_for(segment.longest_line)
                    insert_messages(
                        self._con,
                        self._inputs.key,
                        "records",
                        segment.path,
                        first_seq=segment.first_seq,
                        longest_line=segment.longest_line,
                    )
                except duckdb.Error:
                    self._failed = True  # the rest of the segments are only drained, see finish()
            segment.path.unlink(missing_ok=True)

    def finish(self, http: HttpCapture | None = None) -> StoredOutput:
        """Load what is left (re-filing everything if the fast path was wrong) and the HTTP flows.

        The transaction stays open for `commit`. A load that fails is rolled back and said in the
        output's `error`: the JSONL artifacts are complete, only the queryable copy is missing.
        """
        self.writer.close()
        self._stop()
        writer, refiled = self.writer, False
        try:
            if not self._fast_path_loaded():
                self._con.execute("ROLLBACK")
                self._con.execute("BEGIN TRANSACTION")
                writer, refiled = resplit(self._inputs.artifacts_dir), True
                self._db.make_room_for(writer.longest_line)
                delete_execution(self._con, self._inputs.key)
                insert_message_files(self._con, self._inputs.key, self._inputs.artifacts_dir, writer.longest_line)
            flows = http_flows.insert_http_capture(self._con, self._inputs.key, http) if http is not None else 0
        except (duckdb.Error, OSError) as exc:  # OSError: re-filing stdout.log (disk full, ...)
            self._rollback()
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            return writer.output(refiled=refiled, error=f"could not load the messages into {self._db.path}: {reason}")
        return writer.output(refiled=refiled, http_flows=flows)

    def commit(self, result: ExecutionResult) -> None:
        """Add the execution's row and commit. Raises duckdb.Error.

        When `finish` rolled the load back, the row is still written, alone (its `error` says why
        the messages are missing): every execution that ran has its row.
        """
        try:
            if not self._open:
                self._con.execute("BEGIN TRANSACTION")
                self._open = True
                delete_execution(self._con, self._inputs.key)
            insert_execution(self._con, result)
            self._con.execute("COMMIT")
            self._open = False
        finally:
            self._rollback()
            self._con.close()

    def abort(self) -> None:
        """Drop everything (the execution did not get to produce a result)."""
        self.writer.close()
        self._stop()
        self._rollback()
        self._con.close()

    def _fast_path_loaded(self) -> bool:
        """The rest of the kinds loaded, and the records where the writer filed them."""
        if self._failed:
            return False
        try:
            self._db.make_room_for(self.writer.longest_line)
            tables = [t for t in MESSAGE_TABLES if t != "records"]
            insert_message_files(
                self._con, self._inputs.key, self._inputs.artifacts_dir, self.writer.longest_line, tables
            )
        except duckdb.Error:
            return False
        return self._records_by_stream() == self.writer.records_per_key

    def _rollback(self) -> None:
        if self._open:
            with contextlib.suppress(duckdb.Error):
                self._con.execute("ROLLBACK")
            self._open = False

    def _stop(self) -> None:
        self._segments.put(None)
        self._thread.join()
        shutil.rmtree(self._inputs.artifacts_dir / SEGMENTS_DIR, ignore_errors=True)

    def _records_by_stream(self) -> Counter[tuple[str, str | None]]:
        rows = self._con.execute(
            """SELECT stream, namespace, count(*) FROM records
            WHERE connector = ? AND version = ? AND command = ? GROUP BY ALL""",
            list(self._inputs.key),
        ).fetchall()
        return Counter({(stream, namespace): count for stream, namespace, count in rows})
