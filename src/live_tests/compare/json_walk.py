"""Walk JSON documents stored in DuckDB level by level, in SQL: the top-level fields of each stream,
then one table of nodes per depth.

A level-by-level walk with JSON pointers computed per row is about 10x faster than json_tree, and a
caller that only needs aggregates per level keeps memory flat (each level is dropped once visited).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import duckdb

from live_tests.sql import WILDCARD_INDEX_SQL, Scratch, json_pointer, key_segments_sql, literal, used_params

# (stream SQL, wildcarded path SQL) -> SQL condition: True for a node (and its subtree) to leave out.
SkipSql = Callable[[str, str], str]
# stream -> [(top-level field name, its JSON path as DuckDB writes it, e.g. `$."b c"`)]
StreamFields = dict[str, list[tuple[str, str]]]


def skip_nothing(stream_sql: str, path_sql: str) -> str:
    return "FALSE"


def stream_fields(
    con: duckdb.DuckDBPyConnection,
    docs: str,
    data_columns: Sequence[str],
    params: dict[str, Any] | None = None,
    skip: SkipSql = skip_nothing,
) -> StreamFields:
    """Top-level fields seen per stream in `docs` (a table or query with a `stream` column and the JSON
    columns `data_columns`), minus those `skip` leaves out."""
    union = " UNION ".join(f"SELECT DISTINCT stream, unnest(json_keys({c})) AS name FROM {docs}" for c in data_columns)
    rows = con.execute(
        f"""WITH f AS ({union})
            SELECT f.stream, f.name, j.fullkey
            FROM f, json_tree(json_object(f.name, 0)) j
            WHERE j.fullkey <> '$' AND NOT {skip("f.stream", "j.fullkey")}
            ORDER BY f.stream, f.name""",
        used_params(union, params),
    ).fetchall()
    fields: StreamFields = {}
    for stream, name, path in rows:
        fields.setdefault(stream, []).append((name, path))
    return fields


def walk_levels(
    con: duckdb.DuckDBPyConnection,
    scratch: Scratch,
    docs: str,
    fields: StreamFields,
    visit: Callable[[str, int], None],
    *,
    ids: str = "side, stream, seq",
    params: dict[str, Any] | None = None,
    skip: SkipSql = skip_nothing,
    max_depth: int | None = None,
) -> None:
    """Call `visit(level_table, depth)` for depth 1, 2, ... (up to `max_depth`) of the documents in
    `docs` (columns `ids`, which include `stream`, and `data`).

    Each level table has the `ids` columns plus `field` (the top-level field the node is under),
    `path` (json_tree notation, real indices) and `v` (the node's JSON value). Depth 1 holds the
    top-level fields in `fields` (present ones only); a level's objects and arrays give the next
    level. Nodes `skip` matches are left out with their subtree. A level is dropped after its visit.
    """
    wildcard = WILDCARD_INDEX_SQL.format("path")
    level = scratch.create(
        "walk_level_1",
        f"SELECT {ids}, ''::VARCHAR AS field, ''::VARCHAR AS path, NULL::JSON AS v FROM {docs} LIMIT 0",
        params,
    )
    for stream, stream_fields_ in fields.items():
        names = "[" + ", ".join(literal(name) for name, _ in stream_fields_) + "]"
        fkeys = "[" + ", ".join(literal(fkey) for _, fkey in stream_fields_) + "]"
        pointers = "[" + ", ".join(literal(json_pointer([name])) for name, _ in stream_fields_) + "]"
        # A constant pointer list per stream: fast, and the document is not repeated per field.
        con.execute(
            f"""INSERT INTO {level}
                SELECT * FROM (SELECT {ids}, unnest({names}) AS field, unnest({fkeys}) AS path,
                                      unnest(json_extract(data, {pointers})) AS v
                               FROM {docs} WHERE stream = {literal(stream)})
                WHERE v IS NOT NULL AND NOT {skip("stream", wildcard)}""",
            used_params(docs, params),
        )
    depth = 1
    while True:
        visit(level, depth)
        if max_depth is not None and depth >= max_depth:
            scratch.drop(level)
            return
        depth += 1
        children = scratch.create(
            f"walk_level_{depth}",
            f"""WITH o AS (SELECT {ids}, field, path, v, unnest(json_keys(v)) AS k FROM {level}
                           WHERE json_type(v) = 'OBJECT'),
                     seg AS ({key_segments_sql("SELECT DISTINCT k FROM o")})
                SELECT * FROM (
                    SELECT {ids}, field, o.path || seg.seg AS path, json_extract(o.v, seg.ptr) AS v
                    FROM o JOIN seg USING (k)
                    UNION ALL
                    SELECT {ids}, field, path || '[' || i || ']', json_extract(v, '/' || i)
                    FROM (SELECT {ids}, field, path, v, unnest(range(json_array_length(v)::BIGINT)) AS i
                          FROM {level} WHERE json_type(v) = 'ARRAY'))
                WHERE NOT {skip("stream", wildcard)}""",
        )
        scratch.drop(level)  # the frontier holds document text: free it as soon as possible
        level = children
        remaining = con.execute(f"SELECT count(*) FROM {level}").fetchone()
        if not remaining or not remaining[0]:
            scratch.drop(level)
            return
