"""Paths left out of the comparisons: the noise baseline's volatile paths and the user's `--ignore-field`.

One `IgnoredPath` names a JSON path (array indices as `[*]`) into the documents of one stream (or of
every stream, `*`): into record data for records and inferred schemas, into the state value for
states (global and legacy states only match `*`), into the trace message for traces. A path covers
everything under it. The comparisons turn the list into one SQL condition per document kind with
`IgnoreRules`, so ignored values never leave DuckDB.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from live_tests.sql import literal, normalise_field_path, path_match_sql, path_patterns

ANY_STREAM = "*"
# Which documents an ignored path points into.
RECORDS = "records"
STATES = "states"
TRACES = "traces"
ANY_DOCUMENT = "any"
_APPLIES_TO = (RECORDS, STATES, TRACES, ANY_DOCUMENT)

_INDEX = re.compile(r"\[[^\]]*\]")


@dataclass(frozen=True)
class IgnoredPath:
    """A JSON path a comparison leaves out, with why."""

    stream: str  # "*" = any stream
    path: str  # JSONPath into the record data, e.g. "$.updated_at", "$.address.city", "$.items[*].ts"
    reason: str  # e.g. "differs between two control runs", "--ignore-field"
    records: int | None = None  # how many records (or states) showed it, when it was measured
    # Documents the path points into: "records" | "states" | "traces" | "any" (a volatile state cursor must
    # not hide a record field of the same name; a user's --ignore-field applies everywhere).
    applies_to: str = ANY_DOCUMENT

    def __post_init__(self) -> None:
        if self.applies_to not in _APPLIES_TO:
            raise ValueError(f"applies_to must be one of {', '.join(_APPLIES_TO)}, not {self.applies_to!r}")

    @classmethod
    def parse(cls, text: str, reason: str = "--ignore-field") -> IgnoredPath:
        """`STREAM:JSONPATH`, e.g. `users:$.updated_at`, `*:$.meta.synced_at`, `orders:$.items[*].ts`."""
        stream, sep, path = text.strip().partition(":")
        stream, path = stream.strip(), path.strip()
        example = "expected STREAM:JSONPATH, e.g. users:$.updated_at or *:$.items[*].ts"
        if not sep or not stream or not path:
            raise ValueError(f"ignored field {text!r}: {example}")
        if not path.startswith("$"):
            raise ValueError(f"ignored field {text!r}: the path must start with $ ({example})")
        segments = normalise_field_path(path)
        parts = path.removeprefix("$").removeprefix(".").split(".")
        if not segments or path.removeprefix("$").startswith("[") or "" in parts:
            raise ValueError(f"ignored field {text!r}: the path names no field ({example})")
        if any(seg != "[*]" and _INDEX.search(seg) for seg in segments):
            raise ValueError(f"ignored field {text!r}: array elements can only be [*] ({example})")
        return cls(stream, path, reason)

    def applies(self, kind: str) -> bool:
        return self.applies_to in (ANY_DOCUMENT, kind)

    def label(self) -> str:
        """`stream:path` as the user writes it."""
        return f"{self.stream}:{self.path}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "path": self.path,
            "reason": self.reason,
            "records": self.records,
            "applies_to": self.applies_to,
        }


class IgnoreRules:
    """The ignored paths that apply to one kind of document, compiled to SQL conditions.

    Paths are put in DuckDB's own notation once (see `path_patterns`), so they compare equal to the
    (index-wildcarded) paths the comparisons produce.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, ignored: Sequence[IgnoredPath], kind: str) -> None:
        self.applied = [p for p in ignored if p.applies(kind)]
        self.patterns: dict[str, list[str]] = {}
        for ignored_path in self.applied:
            for pattern in path_patterns(con, [ignored_path.path]):
                patterns = self.patterns.setdefault(ignored_path.stream, [])
                if pattern not in patterns:
                    patterns.append(pattern)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def for_stream(self, stream: str) -> list[str]:
        """Patterns that apply to `stream`, for SQL where the stream is a constant."""
        own = self.patterns.get(stream, []) if stream != ANY_STREAM else []
        return [*self.patterns.get(ANY_STREAM, []), *own]

    def sql(self, stream_sql: str, path_sql: str) -> str:
        """SQL condition: the wildcarded path `path_sql` of the stream `stream_sql` is ignored."""
        checks = []
        for stream, patterns in self.patterns.items():
            match = path_match_sql(path_sql, patterns)
            checks.append(match if stream == ANY_STREAM else f"({stream_sql} = {literal(stream)} AND {match})")
        return "(" + " OR ".join(checks) + ")" if checks else "FALSE"
