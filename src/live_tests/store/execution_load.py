"""Load one execution into duck.db while its connector is still streaming.

The message writer hands over finished segment files of record lines; a thread inserts each one
as it comes (one DuckDB thread, beside the connector), so that once the connector exits only the
last segment, the small message kinds and the execution's row remain. Everything goes in one
transaction, committed at the end.

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

from live_tests.models import ExecutionInputs, ExecutionResult, RecordsSegment
from live_tests.store.message_writer import SEGMENTS_DIR, resplit, stream_file_name
from live_tests.store.session_db import (
    MESSAGE_TABLES,
    SessionDatabase,
    delete_execution,
    insert_execution,
    insert_message_files,
    insert_messages,
)


class ExecutionLoad:
    """Open before the connector starts; `add_segment` while it streams; `finish` once it is done."""

    def __init__(self, db: SessionDatabase, inputs: ExecutionInputs) -> None:
        self._db, self._inputs = db, inputs
        self._segments: queue.SimpleQueue[RecordsSegment | None] = queue.SimpleQueue()
        self._failed = False
        # Whether the fast path had to be undone (stdout.log filed again, then loaded in bulk).
        self.refiled = False
        self._con = db.connection()
        self._con.execute("BEGIN TRANSACTION")
        delete_execution(self._con, inputs.key)
        self._thread = threading.Thread(target=self._insert_segments, name=f"load-{'/'.join(inputs.key)}", daemon=True)
        self._thread.start()

    def add_segment(self, segment: RecordsSegment) -> None:
        self._segments.put(segment)

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

    def finish(self, result: ExecutionResult) -> None:
        """Load what is left and commit; re-file and reload everything if the fast path was wrong."""
        self._stop()
        try:
            if not self._failed:
                self._db.make_room_for(result.longest_line_bytes)
                insert_message_files(self._con, result, tables=[t for t in MESSAGE_TABLES if t != "records"])
                if self._records_by_file_name() == Counter(result.records_per_stream):
                    insert_execution(self._con, result)
                    self._con.execute("COMMIT")
                    return
            self._con.execute("ROLLBACK")
        except duckdb.Error:
            self._con.execute("ROLLBACK")
        finally:
            self._con.close()
        self.refiled = True
        if (result.inputs.artifacts_dir / "stdout.log").exists():
            resplit(result.inputs.artifacts_dir).report_into(result)
        self._db.load(result)

    def abort(self) -> None:
        """Drop everything (the execution did not get to produce a result)."""
        self._stop()
        with contextlib.suppress(duckdb.Error):
            self._con.execute("ROLLBACK")
        self._con.close()

    def _stop(self) -> None:
        self._segments.put(None)
        self._thread.join()
        shutil.rmtree(self._inputs.artifacts_dir / SEGMENTS_DIR, ignore_errors=True)

    def _records_by_file_name(self) -> Counter[str]:
        rows = self._con.execute(
            """SELECT stream, namespace, count(*) FROM records
            WHERE connector = ? AND version = ? AND command = ? GROUP BY ALL""",
            list(self._inputs.key),
        ).fetchall()
        loaded: Counter[str] = Counter()
        for stream, namespace, count in rows:
            loaded[stream_file_name(stream, namespace)] += count
        return loaded
