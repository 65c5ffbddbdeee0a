"""Small SQL helpers shared by the store, the comparisons and the suite: literals, execution filters,
scratch tables, JSON paths."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any

import duckdb
import orjson

from live_tests.models import ExecutionKey

# Replace array indices in a JSON path so paths of different elements count together.
WILDCARD_INDEX_SQL = r"regexp_replace({0}, '\[[0-9]+\]', '[*]', 'g')"

# A JSON value's type, as json_type/json_tree name it, is a container's.
CONTAINER_TYPES = "('OBJECT', 'ARRAY')"

# Separators of the flat canonical form; JSON text escapes these control characters, so a
# separator can never come from a value.
_FIELD_SEP = "chr(31)"
_NODE_SEP = "chr(30)"


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def json_pointer(path: Sequence[str]) -> str:
    """RFC 6901 pointer for a path of field names (DuckDB's json_extract accepts pointers)."""
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in path)


def key_params(prefix: str, key: ExecutionKey) -> dict[str, str]:
    return {f"{prefix}_connector": key.connector, f"{prefix}_version": key.version, f"{prefix}_command": key.command}


def key_filter(prefix: str, alias: str | None = None) -> str:
    """WHERE clause selecting one execution's rows; values come from `key_params(prefix, …)`."""
    col = f"{alias}." if alias else ""
    return (
        f"{col}connector = ${prefix}_connector AND {col}version = ${prefix}_version"
        f" AND {col}command = ${prefix}_command"
    )


def both_params(control: ExecutionKey, target: ExecutionKey) -> dict[str, str]:
    return {**key_params("c", control), **key_params("t", target)}


def used_params(sql: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """The named parameters `sql` refers to (DuckDB rejects unused ones)."""
    return {name: value for name, value in (params or {}).items() if re.search(rf"\${name}\b", sql)}


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    """The column names of a table of the current database (empty if there is no such table)."""
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_schema = 'main'"
        " AND table_catalog = current_database()",
        [table],
    ).fetchall()
    return {name for (name,) in rows}


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main'"
        " AND table_catalog = current_database()",
        [name],
    ).fetchone()
    return bool(row and row[0])


def canonical_sql(source: str, ids: str, json_col: str, exclude_patterns: Sequence[str] = ()) -> str:
    """Key-order-independent canonical text of a JSON column, one row per `ids` (a column list).

    Each JSON node becomes `path type value` and the nodes are joined sorted by path, so two
    documents get the same text exactly when they are equal up to object key order. Nodes at or
    under `exclude_patterns` (wildcarded paths, see `path_patterns`) are left out.
    """
    exclude = path_match_sql(WILDCARD_INDEX_SQL.format("j.fullkey"), exclude_patterns)
    # Qualified: the id names may clash with json_tree's columns (key, path, type, ...).
    columns = [c.strip() for c in ids.split(",")]
    selected = ", ".join(f"s.{c} AS {c}" for c in columns)
    grouped = ", ".join(f"s.{c}" for c in columns)
    return f"""
        SELECT {selected}, string_agg(
                   j.fullkey || {_FIELD_SEP} || j.type || {_FIELD_SEP} || coalesce(j.atom::VARCHAR, ''),
                   {_NODE_SEP} ORDER BY j.fullkey) AS canon
        FROM (SELECT {ids}, {json_col} AS doc FROM {source}) s, json_tree(s.doc) j
        WHERE NOT {exclude}
        GROUP BY {grouped}"""


def key_segments_sql(keys: str) -> str:
    """For each object key in `keys` (a query with column k): its path segment (`.a`, `."b c"`) and
    its JSON pointer (`/a`). DuckDB formats the segment, so paths read like json_tree's."""
    return f"""
        SELECT d.k, substr(j.fullkey, 2) AS seg, '/' || replace(replace(d.k, '~', '~0'), '/', '~1') AS ptr
        FROM ({keys}) d, json_tree(json_object(d.k, 0)) j WHERE j.fullkey <> '$'"""


class Scratch:
    """Temporary tables of one comparison, dropped on exit (names are unique per instance)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._prefix = f"lt_cmp_{uuid.uuid4().hex[:10]}_"
        self._tables: list[str] = []

    def create(self, label: str, select: str, params: dict[str, Any] | None = None) -> str:
        name = self._prefix + label
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {select}", used_params(select, params))
        if name not in self._tables:
            self._tables.append(name)
        return name

    def drop(self, name: str) -> None:
        """Drop a table early (e.g. a large intermediate) instead of at exit."""
        self.con.execute(f"DROP TABLE IF EXISTS {name}")
        if name in self._tables:
            self._tables.remove(name)

    def __enter__(self) -> Scratch:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for name in reversed(self._tables):
            self.con.execute(f"DROP TABLE IF EXISTS {name}")


def normalise_field_path(path: str | Sequence[str]) -> list[str]:
    """Field path as a list of segments; `[*]` stands for any array element.

    Accepts a list of field names (`["meta", "updated_at"]`) or a dotted string (`"meta.updated_at"`,
    `"$.items[*].ts"`). Use the list form for field names that contain dots or brackets.
    """
    if not isinstance(path, str):
        return [str(p) for p in path]
    text = path.strip().removeprefix("$").removeprefix(".")
    segments: list[str] = []
    for part in text.split(".") if text else []:
        match = _SEGMENT.fullmatch(part)
        assert match is not None  # the pattern matches any string
        if match["name"]:
            segments.append(match["name"])
        segments += ["[*]"] * (len(match["stars"]) // 3)
    return segments


_SEGMENT = re.compile(r"(?P<name>.*?)(?P<stars>(?:\[\*\])*)")


def path_patterns(con: duckdb.DuckDBPyConnection, paths: Iterable[str | Sequence[str]]) -> list[str]:
    """Field paths in DuckDB's json_tree notation with `[*]` for indices, e.g. `$.a."b c"[*].d`.

    DuckDB itself formats them (from a tiny document holding the path), so quoting rules match the
    paths the comparisons produce.
    """
    patterns: list[str] = []
    for path in paths:
        segments = normalise_field_path(path)
        if not segments:
            continue
        doc: Any = 0
        for segment in reversed(segments):
            doc = [doc] if segment == "[*]" else {segment: doc}
        row = con.execute(
            f"SELECT {WILDCARD_INDEX_SQL.format('fullkey')} FROM json_tree(?::JSON)"
            " WHERE type NOT IN ('OBJECT', 'ARRAY') LIMIT 1",
            [orjson.dumps(doc).decode()],
        ).fetchone()
        if row:
            patterns.append(row[0])
    return patterns


def path_match_sql(column: str, patterns: Sequence[str]) -> str:
    """SQL condition: the wildcarded path in `column` is one of `patterns` or lies under one."""
    if not patterns:
        return "FALSE"
    checks = []
    for pattern in patterns:
        lit = literal(pattern)
        checks.append(
            f"({column} = {lit} OR starts_with({column}, {lit} || '.') OR starts_with({column}, {lit} || '['))"
        )
    return "(" + " OR ".join(checks) + ")"


def fetch_dicts(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Rows as dicts; only for small results (differences, statistics), never raw records."""
    cursor = con.execute(sql, used_params(sql, params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
