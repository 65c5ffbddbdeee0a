"""Split a connector's stdout, as it streams, into one JSONL file per Airbyte message kind.

Each message line is written back byte for byte (no re-serialisation); only its type, and a
record's stream, are looked at. Lines that are not Airbyte messages go to `invalid_lines.jsonl`.

Records are most of the output, so they take a fast path: once a stream's records have been seen
to start with the same bytes (`{"type":"RECORD","record":{"stream":"users",`), a block of lines
that all start so is filed without parsing a line. The fast path does not check that the rest of
each line is valid JSON, nor that no namespace follows the stream; the DuckDB load does (it parses
every record and counts them per stream), and stdout.log is filed again with `resplit`, parsing
every line, when it finds otherwise.

With `on_segment`, record lines are also handed over in finished segment files (a temporary copy,
deleted once loaded) so that duck.db can load them while the connector is still streaming.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from live_tests.models import INVALID_KIND, MESSAGE_KINDS, RecordsSegment, StoredOutput
from live_tests.store.stream_files import StreamFileNames, StreamKey

# Artifacts are flushed at least this often, so a long read can be followed with `tail -f`.
FLUSH_INTERVAL_S = 1.0
# Records handed to the loader per segment: small enough that little is left to load once the
# connector exits, large enough that the per-statement cost of DuckDB does not matter.
SEGMENT_BYTES = 16 * 2**20
SEGMENTS_DIR = ".loading"
# The start of a RECORD line up to its stream (and namespace, when it comes first), in the key order
# Airbyte's CDKs write. Whitespace is allowed as json.dumps writes it.
_RECORD_PREFIX = re.compile(
    rb'\{\s*"type"\s*:\s*"RECORD"\s*,\s*"record"\s*:\s*\{\s*'
    rb'(?:"namespace"\s*:\s*"[^"\\]*"\s*,\s*)?"stream"\s*:\s*"[^"\\]*"\s*,'
)
_NAMESPACE_KEY = b'"namespace"'
# Lines longer than this are not filed as messages (DuckDB would need several times their size in
# memory to load them): invalid_lines keeps their first TRUNCATED_LINE_BYTES, stdout.log all of them.
MAX_LINE_BYTES = int(float(os.environ.get("LIVE_TESTS_MAX_LINE_MB", "256")) * 2**20)
TRUNCATED_LINE_BYTES = 2**20
# Blocks of lines larger than this get their longest line measured exactly (see `longest_line`).
_EXACT_LENGTH_ABOVE = 2**20


class _Segments:
    """Record lines copied into numbered files; each finished file is handed to `on_segment`."""

    def __init__(self, directory: Path, on_segment: Callable[[RecordsSegment], None]) -> None:
        self._dir, self._on_segment = directory, on_segment
        self._file: BinaryIO | None = None
        self._path = directory
        self._number = self._bytes = self._lines = self._longest = 0
        self._first_seq = 1

    def write(self, data: bytes, lines: int, longest: int) -> None:
        if self._file is None:
            self._dir.mkdir(exist_ok=True)
            self._number += 1
            self._path = self._dir / f"records-{self._number:06d}.jsonl"
            self._file = open(self._path, "wb")  # noqa: SIM115
        self._file.write(data)
        self._bytes += len(data)
        self._lines += lines
        self._longest = max(self._longest, longest)
        if self._bytes >= SEGMENT_BYTES:
            self.finish()

    def finish(self) -> None:
        if self._file is None:
            return
        self._file.close()
        segment = RecordsSegment(self._path, self._first_seq, self._lines, self._longest)
        self._first_seq += self._lines
        self._file, self._bytes, self._lines, self._longest = None, 0, 0, 0
        self._on_segment(segment)


class MessageWriter:
    """Receives stdout in arbitrary chunks; writes stdout.log and airbyte_messages/*.jsonl."""

    def __init__(
        self,
        artifacts_dir: Path,
        on_segment: Callable[[RecordsSegment], None] | None = None,
        *,
        write_stdout: bool = True,
        parse_every_line: bool = False,
        messages_dir: Path | None = None,
    ) -> None:
        self.messages_dir = messages_dir or artifacts_dir / "airbyte_messages"
        self.messages_dir.mkdir(parents=True, exist_ok=True)
        self._stdout = open(artifacts_dir / "stdout.log", "wb") if write_stdout else None  # noqa: SIM115
        self._segments = _Segments(artifacts_dir / SEGMENTS_DIR, on_segment) if on_segment else None
        self._files: dict[str, BinaryIO] = {}
        self._stream_files: dict[StreamKey, BinaryIO] = {}
        self._sole_stream: StreamKey | None = None
        # Learned record line starts -> (stream, namespace).
        self._prefixes: dict[bytes, StreamKey] = {}
        self._learn = not parse_every_line
        # Pieces of a line not yet ended; a list so a huge line costs O(n), not O(n^2).
        self._partial: list[bytes] = []
        self._next_flush = 0.0
        self.first_record_at: float | None = None
        self.lines = 0
        self.stdout_bytes = 0
        # At least the longest line written to any JSONL file, exact beyond 1 MiB: the store sizes
        # its JSON reader by it, and blocks of short lines are not measured line by line.
        self.longest_line = 0
        self.counts: Counter[str] = Counter()
        # Records per stream, keyed by the stream's file stem (unique per stream and namespace).
        self.records_per_stream: Counter[str] = Counter()
        self.records_per_key: Counter[StreamKey] = Counter()
        self._file_names = StreamFileNames()
        self.max_line_bytes = MAX_LINE_BYTES
        self.warnings: list[str] = []
        # An over-long line being skipped: its first bytes, and how long it is so far.
        self._oversized: bytes | None = None
        self._oversized_bytes = 0
        self._partial_bytes = 0

    def feed(self, chunk: bytes) -> None:
        self.stdout_bytes += len(chunk)
        if self._stdout is not None:
            self._stdout.write(chunk)
        if self._oversized is not None:  # inside a line over the cap: skip to its end
            first = chunk.find(b"\n")
            self._oversized_bytes += len(chunk) if first < 0 else first
            if first < 0:
                return
            self._end_oversized()
            chunk = chunk[first + 1 :]
        end = chunk.rfind(b"\n") + 1
        if end == 0:
            self._partial.append(chunk)
            self._partial_bytes += len(chunk)
            if self._partial_bytes > self.max_line_bytes:
                self._start_oversized()
        else:
            if self._partial:
                self._partial.append(chunk[:end])
                block = b"".join(self._partial)
                self._partial.clear()
            else:
                block = chunk[:end]
            self._partial_bytes = 0
            if end < len(chunk):
                self._partial.append(chunk[end:])
                self._partial_bytes = len(chunk) - end
            self._block(block)
        if (now := time.monotonic()) >= self._next_flush:
            self.flush()
            self._next_flush = now + FLUSH_INTERVAL_S

    def _start_oversized(self) -> None:
        """The unfinished line is over the cap: keep its start, drop the rest as it comes."""
        head = b"".join(self._partial)
        self._partial.clear()
        self._oversized, self._oversized_bytes, self._partial_bytes = head[:TRUNCATED_LINE_BYTES], len(head), 0

    def _end_oversized(self) -> None:
        assert self._oversized is not None
        self.lines += 1
        self._too_long(self._oversized, self._oversized_bytes)
        self._oversized = None

    def _too_long(self, head: bytes, size: int) -> None:
        """A line over the cap: in invalid_lines (its start only), and said in a warning."""
        self._invalid(head[:TRUNCATED_LINE_BYTES], truncated_from=size)
        self.warnings.append(
            f"line {self.lines} of stdout is {size / 2**20:.0f} MB, over the {self.max_line_bytes / 2**20:g} MB cap "
            f"(LIVE_TESTS_MAX_LINE_MB): not loaded as a message; invalid_lines keeps its first "
            f"{TRUNCATED_LINE_BYTES // 2**20} MB, stdout.log all of it"
        )

    @property
    def records(self) -> int:
        return self.counts.get("records", 0)

    def output(self, **extra: Any) -> StoredOutput:
        """What was filed, as the store reports it."""
        return StoredOutput(
            lines=self.lines,
            stdout_bytes=self.stdout_bytes,
            longest_line_bytes=self.longest_line,
            message_counts=dict(self.counts),
            records_per_stream=dict(self.records_per_stream),
            warnings=tuple(self.warnings),
            **extra,
        )

    def close(self) -> None:
        if self._oversized is not None:
            self._end_oversized()
        if self._partial:
            last = b"".join(self._partial)
            self._partial.clear()
            if len(last) > self.max_line_bytes:
                self.lines += 1
                self._too_long(last, len(last))
                last = b""
            try:
                orjson.loads(last)
            except orjson.JSONDecodeError:  # the connector stopped mid-line: not a record, whatever it starts with
                if last.strip():
                    self.lines += 1
                    self._invalid(last)
            else:
                self._lines([last])
        if self._segments is not None:
            self._segments.finish()
        for f in (*self._files.values(), *self._stream_files.values()):
            f.close()
        if self._stdout is not None:
            self._stdout.close()
        if self._sole_stream is not None:
            records, own = self.messages_dir / "records.jsonl", self._stream_path(self._sole_stream)
            own.unlink(missing_ok=True)  # an earlier run's file, maybe a link to records.jsonl itself
            try:
                os.link(records, own)
            except OSError:  # a file system without hard links
                shutil.copyfile(records, own)
        if self.records_per_key:
            self._file_names.write_manifest(self.messages_dir / "records_per_stream", self.records_per_key)

    def flush(self) -> None:
        """Push what was written to the files; safe from another thread (the runner's flusher)."""
        files = (*tuple(self._files.values()), *tuple(self._stream_files.values()), self._stdout)
        for f in files:
            if f is not None:
                with contextlib.suppress(ValueError):  # closed meanwhile
                    f.flush()

    def _file(self, kind: str) -> BinaryIO:
        f = self._files.get(kind)
        if f is None:
            f = self._files[kind] = open(self.messages_dir / f"{kind}.jsonl", "wb")  # noqa: SIM115
        return f

    def _block(self, block: bytes) -> None:
        """Lines ending in a newline. All records of one stream with a known start: no parse at all."""
        match = _RECORD_PREFIX.match(block)
        key = self._prefixes.get(match[0]) if match else None
        if key is not None:
            lines = block.count(b"\n")
            longest = len(block)
            if longest > _EXACT_LENGTH_ABOVE:
                longest = max(map(len, block.split(b"\n")))
            if block.count(b"\n" + match[0]) == lines - 1 and longest <= self.max_line_bytes:  # type: ignore[index]
                self.lines += lines
                self._stream_records({key: (block, lines)})
                self._records(block, lines, longest)
                return
        self._lines(block.split(b"\n")[:-1])

    def _lines(self, lines: list[bytes]) -> None:
        """Line by line: a known record start, else one full parse."""
        prefixes = self._prefixes
        records: list[bytes] = []
        per_stream: dict[StreamKey, list[bytes]] = {}
        other: dict[str, list[bytes]] = {}
        for line in lines:
            if len(line) > self.max_line_bytes:
                self.lines += 1
                self._too_long(line, len(line))
                continue
            match = _RECORD_PREFIX.match(line)
            key = prefixes.get(match[0]) if match else None
            if key is None:
                try:
                    kind, key = self._classify(line, match)
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    if line.strip():
                        self.lines += 1
                        self._invalid(line)
                    continue
            self.lines += 1
            if key is None:
                other.setdefault(kind, []).append(line)
                continue
            records.append(line)
            batch = per_stream.get(key)
            if batch is None:
                batch = per_stream[key] = []
            batch.append(line)
        for kind, batch in other.items():
            self.longest_line = max(self.longest_line, *map(len, batch))
            self._file(kind).write(b"\n".join(batch) + b"\n")
            self.counts[kind] += len(batch)
        if records:
            self._stream_records({key: (b"\n".join(batch) + b"\n", len(batch)) for key, batch in per_stream.items()})
            self._records(b"\n".join(records) + b"\n", len(records), max(map(len, records)))

    def _classify(self, line: bytes, match: re.Match[bytes] | None) -> tuple[str, StreamKey | None]:
        """Parse the line: its kind, and for a record its stream key (learning the line's start)."""
        message = orjson.loads(line)
        kind = MESSAGE_KINDS[message["type"]]
        if kind != "records":
            return kind, None
        record = message["record"]
        key = (record["stream"], record.get("namespace"))
        if not isinstance(key[0], str) or not isinstance(key[1], str | None):
            raise TypeError
        # A start that names the stream but not the namespace the record has cannot stand for it.
        if match is not None and self._learn and (key[1] is not None) == (_NAMESPACE_KEY in match[0]):
            self._prefixes.setdefault(match[0], key)
        return kind, key

    def _records(self, data: bytes, lines: int, longest: int) -> None:
        """Record lines in stdout order: records.jsonl, and the segments duck.db loads."""
        if self.first_record_at is None:
            self.first_record_at = time.monotonic()
        self.longest_line = max(self.longest_line, longest)
        self._file("records").write(data)
        if self._segments is not None:
            self._segments.write(data, lines, longest)
        self.counts["records"] += lines

    def _stream_records(self, batches: dict[StreamKey, tuple[bytes, int]]) -> None:
        """Record lines by stream, before the same lines go to records.jsonl.

        While a single stream has been seen, records.jsonl holds exactly its records: its own file
        is made from records.jsonl at the end (a hard link), not written a second time.
        """
        if self._sole_stream is None and not self._stream_files and len(batches) == 1:
            self._sole_stream = next(iter(batches))
        elif self._sole_stream is not None and (len(batches) > 1 or self._sole_stream not in batches):
            self.flush()
            own = self._stream_path(self._sole_stream)
            shutil.copyfile(self.messages_dir / "records.jsonl", own)
            self._stream_files[self._sole_stream] = open(own, "ab")  # noqa: SIM115
            self._sole_stream = None
        for key, (data, lines) in batches.items():
            self.records_per_stream[self._file_names.stem(key)] += lines
            self.records_per_key[key] += lines
            if key == self._sole_stream:
                continue
            f = self._stream_files.get(key)
            if f is None:
                f = self._stream_files[key] = open(self._stream_path(key), "wb")  # noqa: SIM115
            f.write(data)

    def _stream_path(self, key: StreamKey) -> Path:
        per_stream_dir = self.messages_dir / "records_per_stream"
        per_stream_dir.mkdir(exist_ok=True)
        return per_stream_dir / f"{self._file_names.stem(key)}.jsonl"

    def _invalid(self, line: bytes, truncated_from: int | None = None) -> None:
        self.counts[INVALID_KIND] += 1
        fields: dict[str, Any] = {"line_number": self.lines, "text": line.decode("utf-8", "replace")}
        if truncated_from is not None:
            fields["truncated_from_bytes"] = truncated_from
        entry = orjson.dumps(fields)
        self.longest_line = max(self.longest_line, len(entry))
        self._file(INVALID_KIND).write(entry + b"\n")


def resplit(artifacts_dir: Path, chunk_bytes: int = 4 * 2**20) -> MessageWriter:
    """File stdout.log again, parsing every line, in place of what was filed: used when the fast path was wrong.

    The new filing is made beside the first and swapped in once complete: if it fails, the first stays.
    """
    final = artifacts_dir / "airbyte_messages"
    refiling = final.with_name(f"{final.name}.refiling")
    shutil.rmtree(refiling, ignore_errors=True)
    writer = MessageWriter(artifacts_dir, write_stdout=False, parse_every_line=True, messages_dir=refiling)
    with open(artifacts_dir / "stdout.log", "rb") as stdout:
        while chunk := stdout.read(chunk_bytes):
            writer.feed(chunk)
    writer.close()
    shutil.rmtree(final, ignore_errors=True)
    refiling.rename(final)
    writer.messages_dir = final
    return writer
