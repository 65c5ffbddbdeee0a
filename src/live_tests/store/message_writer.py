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
        self._stream_files: dict[str, BinaryIO] = {}
        # Pieces of a line not yet ended; a list so a huge line costs O(n), not O(n^2).
        self._partial: list[bytes] = []
        self.started_at = time.monotonic()
        self.first_record_at: float | None = None
        self.lines = 0
        self.counts: Counter[str] = Counter()
        self.records_per_stream: Counter[str] = Counter()

    def feed(self, chunk: bytes) -> None:
        self._stdout.write(chunk)
        start = 0
        end = chunk.find(b"\n")
        if end < 0:
            self._partial.append(chunk)
            return
        if self._partial:
            self._partial.append(chunk[:end])
            self._line(b"".join(self._partial))
            self._partial.clear()
            start = end + 1
            end = chunk.find(b"\n", start)
        line = self._line
        while end >= 0:
            line(chunk[start:end])
            start = end + 1
            end = chunk.find(b"\n", start)
        if start < len(chunk):
            self._partial.append(chunk[start:])

    def close(self) -> None:
        if self._partial:
            self._line(b"".join(self._partial))
            self._partial.clear()
        for f in (self._stdout, *self._files.values(), *self._stream_files.values()):
            f.close()

    def _file(self, kind: str) -> BinaryIO:
        f = self._files.get(kind)
        if f is None:
            f = self._files[kind] = open(self.messages_dir / f"{kind}.jsonl", "wb")  # noqa: SIM115
        return f

    def _line(self, line: bytes) -> None:
        line = line.rstrip(b"\r")
        if not line.strip():
            return
        self.lines += 1
        try:
            message = orjson.loads(line)
            kind = MESSAGE_KINDS[message["type"]]
            if kind == "records":
                record = message["record"]
                stream_key = stream_file_name(record["stream"], record.get("namespace"))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self._invalid(line)
            return
        self.counts[kind] += 1
        self._file(kind).write(line + b"\n")
        if kind == "records":
            if self.first_record_at is None:
                self.first_record_at = time.monotonic()
            self.records_per_stream[stream_key] += 1
            f = self._stream_files.get(stream_key)
            if f is None:
                per_stream_dir = self.messages_dir / "records_per_stream"
                per_stream_dir.mkdir(exist_ok=True)
                f = self._stream_files[stream_key] = open(per_stream_dir / f"{stream_key}.jsonl", "wb")  # noqa: SIM115
            f.write(line + b"\n")

    def _invalid(self, line: bytes) -> None:
        self.counts[INVALID_KIND] += 1
        entry = {"line_number": self.lines, "text": line.decode("utf-8", "replace")}
        self._file(INVALID_KIND).write(orjson.dumps(entry) + b"\n")
