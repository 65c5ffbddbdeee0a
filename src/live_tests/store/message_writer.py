"""Split a connector's stdout, as it streams, into one JSONL file per Airbyte message kind.

Each message line is written back byte for byte (no re-serialisation); only its type, and a
record's stream, are looked at. Lines that are not Airbyte messages go to `invalid_lines.jsonl`.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path
from typing import BinaryIO

import orjson

from live_tests.models import INVALID_KIND, MESSAGE_KINDS

# Artifacts are flushed at least this often, so a long read can be followed with `tail -f`.
FLUSH_INTERVAL_S = 1.0
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9_.-]")


def stream_file_name(stream: str, namespace: str | None) -> str:
    name = f"{namespace}.{stream}" if namespace else stream
    return _UNSAFE_FILENAME.sub("_", name) or "_"


class MessageWriter:
    """Receives stdout in arbitrary chunks; writes stdout.log and airbyte_messages/*.jsonl."""

    def __init__(self, artifacts_dir: Path) -> None:
        self.messages_dir = artifacts_dir / "airbyte_messages"
        self.messages_dir.mkdir(parents=True, exist_ok=True)
        self._stdout = open(artifacts_dir / "stdout.log", "wb")  # noqa: SIM115 - closed in close()
        self._files: dict[str, BinaryIO] = {}
        self._stream_files: dict[tuple[str, str | None], BinaryIO] = {}
        # Pieces of a line not yet ended; a list so a huge line costs O(n), not O(n^2).
        self._partial: list[bytes] = []
        self._next_flush = 0.0
        self.first_record_at: float | None = None
        self.lines = 0
        # Longest line written to any JSONL file: the store sizes its JSON reader by it.
        self.longest_line = 0
        self.counts: Counter[str] = Counter()
        self.records_per_stream: Counter[str] = Counter()

    def feed(self, chunk: bytes) -> None:
        self._stdout.write(chunk)
        lines = chunk.split(b"\n")
        if self._partial:
            self._partial.append(lines[0])
            lines[0] = b"".join(self._partial)
            self._partial.clear()
        if last := lines.pop():
            self._partial.append(last)
        if lines:
            self._lines(lines)
        if (now := time.monotonic()) >= self._next_flush:
            self._flush()
            self._next_flush = now + FLUSH_INTERVAL_S

    def close(self) -> None:
        if self._partial:
            self._lines([b"".join(self._partial)])
            self._partial.clear()
        for f in (self._stdout, *self._files.values(), *self._stream_files.values()):
            f.close()

    def _flush(self) -> None:
        for f in (self._stdout, *self._files.values(), *self._stream_files.values()):
            f.flush()

    def _file(self, kind: str) -> BinaryIO:
        f = self._files.get(kind)
        if f is None:
            f = self._files[kind] = open(self.messages_dir / f"{kind}.jsonl", "wb")  # noqa: SIM115
        return f

    def _stream_file(self, stream: str, namespace: str | None) -> BinaryIO:
        name = stream_file_name(stream, namespace)
        per_stream_dir = self.messages_dir / "records_per_stream"
        per_stream_dir.mkdir(exist_ok=True)
        return open(per_stream_dir / f"{name}.jsonl", "wb")

    def _lines(self, lines: list[bytes]) -> None:
        """The hot path: one parse per line, writes batched per chunk."""
        loads, kinds, counts = orjson.loads, MESSAGE_KINDS, self.counts
        self.longest_line = max(self.longest_line, *map(len, lines))
        per_stream: dict[tuple[str, str | None], list[bytes]] = {}
        other: dict[str, list[bytes]] = {}
        for line in lines:
            try:
                message = loads(line)
                kind = kinds[message["type"]]
                if kind == "records":
                    record = message["record"]
                    key = (record["stream"], record.get("namespace"))
                    if not isinstance(key[0], str):
                        raise TypeError
            except (orjson.JSONDecodeError, KeyError, TypeError):
                if line.strip():
                    self.lines += 1
                    self._invalid(line)
                continue
            self.lines += 1
            if kind == "records":
                batch = per_stream.get(key)
                if batch is None:
                    batch = per_stream[key] = []
                batch.append(line)
            else:
                other.setdefault(kind, []).append(line)
                counts[kind] += 1
        for kind, batch in other.items():
            self._file(kind).write(b"\n".join(batch) + b"\n")
        if per_stream:
            if self.first_record_at is None:
                self.first_record_at = time.monotonic()
            records = self._file("records")
            for key, batch in per_stream.items():
                data = b"\n".join(batch) + b"\n"
                records.write(data)
                f = self._stream_files.get(key)
                if f is None:
                    f = self._stream_files[key] = self._stream_file(*key)
                f.write(data)
                self.records_per_stream[stream_file_name(*key)] += len(batch)
                counts["records"] += len(batch)

    def _invalid(self, line: bytes) -> None:
        self.counts[INVALID_KIND] += 1
        entry = orjson.dumps({"line_number": self.lines, "text": line.decode("utf-8", "replace")})
        self.longest_line = max(self.longest_line, len(entry))
        self._file(INVALID_KIND).write(entry + b"\n")
