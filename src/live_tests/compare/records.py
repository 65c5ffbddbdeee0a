"""Compare the records of control and target, stream by stream, entirely in DuckDB.

Streams with a primary key: records are paired by key (FULL OUTER JOIN on the key's JSON text and
the occurrence number, so duplicate keys pair in order) -> missing keys, extra keys, and for each
pair the field paths that differ. Streams without one: records are compared as multisets
(EXCEPT ALL semantics: a pairing join on (value, occurrence) that keeps each row's seq).

Equality is decided in tiers so only records that really differ pay for the detailed diff:
1. the hash of the record's JSON text (identical text: equal; most records stop here);
2. top-level field values, extracted with a constant per-stream list of JSON pointers and
   compared as yyjson-normalised text (key order of the top level no longer matters);
3. json_tree of the top-level values that still differ and are objects/arrays on both sides,
   joined on the node path (nested key order no longer matters; gives the nested field paths).
Multisets use the same idea: text hash, then a hash of the sorted top-level values, then the
full canonical form (see `_sql.canonical_sql`). Ignored field paths are left out in tiers 2-3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import duckdb

from live_tests.compare.diff import Comparison, ExecutionKey, Finding, Severity, dumps_line, parse_json, short
from live_tests.sql import (
    CONTAINER_TYPES,
    WILDCARD_INDEX_SQL,
    Scratch,
    both_params,
    fetch_dicts,
    json_pointer,
    key_filter,
    key_segments_sql,
    literal,
    path_match_sql,
    path_patterns,
    used_params,
)
from live_tests.store.message_writer import stream_file_name

# stream -> primary key as a list of field paths, each a list of field names (Airbyte's shape:
# [["id"]], [["account", "id"], ["date"]]). A bare string path means one top-level field.
PrimaryKeys = Mapping[str, Sequence[Sequence[str] | str]]
FieldPath = str | Sequence[str]

MISSING = "missing_in_target"
EXTRA = "extra_in_target"
CHANGED = "changed"


@dataclass(frozen=True)
class FieldDiffCount:
    """How many records differ at one field path (array indices shown as [*])."""

    path: str  # e.g. "$.address.city", "$.tags[*]"
    change: str  # "changed" (value/type differs) | "added" (only in target) | "removed" (only in control)
    records: int


@dataclass
class StreamRecordsDiff:
    stream: str
    primary_key: list[list[str]] | None  # None: compared as a multiset
    control_count: int = 0
    target_count: int = 0
    missing_in_target: int = 0  # control keys (multiset: control rows) with no counterpart in target
    extra_in_target: int = 0
    changed: int = 0  # same key, some field differs (keyed streams only)
    changed_values: int = 0  # ... of which some field changed or disappeared (not only added fields)
    duplicate_keys_control: int = 0  # keys occurring more than once
    duplicate_keys_target: int = 0
    field_diffs: list[FieldDiffCount] = field(default_factory=list)
    top_level_field_diffs: dict[str, int] = field(default_factory=dict)  # field -> records differing
    # First differing records: {"kind", "key", "differences": [{path, change, control, target}],
    # "control": record data, "target": record data}; at most max_examples per kind.
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def keyed(self) -> bool:
        return self.primary_key is not None

    @property
    def identical(self) -> bool:
        return not (self.missing_in_target or self.extra_in_target or self.changed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "primary_key": self.primary_key,
            "control_count": self.control_count,
            "target_count": self.target_count,
            "missing_in_target": self.missing_in_target,
            "extra_in_target": self.extra_in_target,
            "changed": self.changed,
            "changed_values": self.changed_values,
            "duplicate_keys_control": self.duplicate_keys_control,
            "duplicate_keys_target": self.duplicate_keys_target,
            "field_diffs": [vars(f) for f in self.field_diffs],
            "top_level_field_diffs": self.top_level_field_diffs,
        }


@dataclass
class RecordsComparison(Comparison):
    title: ClassVar[str] = "Records comparison"

    streams: dict[str, StreamRecordsDiff] = field(default_factory=dict)
    ignored_fields: list[str] = field(default_factory=list)

    def overview_lines(self) -> list[str]:
        if not self.streams:
            return ["No records on either side."]
        width = max(12, *(len(s) for s in self.streams))
        header = (
            f"{'stream':<{width}}  {'key':<14} {'control':>10} {'target':>10} "
            f"{'missing':>9} {'extra':>9} {'changed':>9}"
        )
        lines = [header, "-" * len(header)]
        for diff in self.streams.values():
            key = ",".join(".".join(p) for p in diff.primary_key) if diff.primary_key else "(multiset)"
            changed = str(diff.changed) if diff.keyed else "-"
            lines.append(
                f"{diff.stream:<{width}}  {short(key, 14):<14} {diff.control_count:>10} {diff.target_count:>10} "
                f"{diff.missing_in_target:>9} {diff.extra_in_target:>9} {changed:>9}"
            )
        for diff in self.streams.values():
            if diff.field_diffs:
                lines += ["", f"Fields differing in `{diff.stream}` (records):"]
                lines += [f"  {f.path} ({f.change}): {f.records}" for f in diff.field_diffs[:30]]
                if len(diff.field_diffs) > 30:
                    lines.append(f"  … {len(diff.field_diffs) - 30} more paths (see findings.json)")
        if self.ignored_fields:
            lines += ["", f"Ignored fields: {', '.join(self.ignored_fields)}"]
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "streams": {name: s.to_dict() for name, s in self.streams.items()}}

    def _write_extra_files(self, directory: Path) -> list[Path]:
        written = []
        for diff in self.streams.values():
            if not diff.examples:
                continue
            path = directory / f"records_{stream_file_name(diff.stream, None)}.jsonl"
            with open(path, "wb") as f:
                for example in diff.examples:
                    f.write(dumps_line({"stream": diff.stream, **example}))
            written.append(path)
        return written


def compare_records(
    con: duckdb.DuckDBPyConnection,
    control: ExecutionKey,
    target: ExecutionKey,
    primary_keys: PrimaryKeys | None = None,
    *,
    ignore_fields: Sequence[FieldPath] = (),
    max_examples: int = 20,
) -> RecordsComparison:
    """Compare the records of two executions per stream.

    `primary_keys`: stream -> key paths (from the configured catalog); streams not listed, or
    with an empty key, are compared as multisets. `ignore_fields`: field paths left out of the
    comparison (`"updated_at"`, `"meta.synced_at"`, `"items[*].ts"`, or `["a.b", "c"]` for names
    containing dots). `emitted_at` is never compared (it is not part of the record data).
    """
    c_key, t_key = ExecutionKey(*control), ExecutionKey(*target)
    keys = {s: [[p] if isinstance(p, str) else list(p) for p in paths] for s, paths in (primary_keys or {}).items()}
    keys = {s: paths for s, paths in keys.items() if paths}
    ignored = path_patterns(con, ignore_fields)
    result = RecordsComparison(c_key, t_key, ignored_fields=ignored)
    params = both_params(c_key, t_key)
    with Scratch(con) as scratch:
        run = _Run(con, scratch, params, ignored)
        pairs = run.pair_records(_key_sql(keys))
        field_diffs = run.keyed_field_diffs(pairs)
        outcome = run.outcomes(pairs, field_diffs)
        _collect_stats(con, result, run, outcome, field_diffs, keys)
        _collect_examples(con, result, run, outcome, field_diffs, max_examples)
    result.findings = [finding for diff in result.streams.values() for finding in _stream_findings(diff)]
    return result


def _key_sql(keys: dict[str, list[list[str]]]) -> str:
    """Per-stream primary key as the JSON text of the array of key values (NULL: no key)."""
    if not keys:
        return "NULL::VARCHAR"
    whens = []
    for stream, paths in keys.items():
        values = ", ".join(f"json_extract(data, {literal(json_pointer(p))})" for p in paths)
        whens.append(f"WHEN {literal(stream)} THEN json_array({values})::VARCHAR")
    return f"CASE stream {' '.join(whens)} ELSE NULL END"


class _Run:
    """The scratch tables of one records comparison, built step by step."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, scratch: Scratch, params: dict[str, str], ignored: list[str]
    ) -> None:
        self.con = con
        self.scratch = scratch
        self.params = params
        self.ignored = ignored

    def records(self, side: str, alias: str = "r") -> str:
        """The records table restricted to one side, for joins on seq."""
        return f"(SELECT seq, data FROM records {alias} WHERE {key_filter(side, alias)})"

    def pair_records(self, key_sql: str) -> str:
        """Tier 1: one row per control/target record pairing (stream, pkey, occ, cseq, tseq, same)."""
        numbered = {}
        for side in ("c", "t"):
            # Streams without a key pair by the hash of the record text (multiset semantics).
            numbered[side] = self.scratch.create(
                f"numbered_{side}",
                f"""WITH s AS (
                        SELECT stream, k IS NOT NULL AS keyed, coalesce(k, '#' || h::VARCHAR) AS pkey, seq, h
                        FROM (SELECT stream, {key_sql} AS k, seq, hash(data) AS h
                              FROM records WHERE {key_filter(side)})),
                    dup AS (SELECT stream, pkey FROM s GROUP BY ALL HAVING count(*) > 1)
                    SELECT s.*, 1::BIGINT AS occ FROM s ANTI JOIN dup USING (stream, pkey)
                    UNION ALL
                    SELECT s.*, row_number() OVER (PARTITION BY stream, pkey ORDER BY seq) AS occ
                    FROM s SEMI JOIN dup USING (stream, pkey)""",
                self.params,
            )
        self.numbered = numbered
        return self.scratch.create(
            "pairs",
            f"""SELECT stream, pkey, occ, coalesce(c.keyed, t.keyed) AS keyed, c.seq AS cseq, t.seq AS tseq,
                       coalesce(c.h = t.h, FALSE) AS same
                FROM {numbered["c"]} c FULL OUTER JOIN {numbered["t"]} t USING (stream, pkey, occ)""",
        )

    def stream_fields(self, docs: str, data_columns: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """Top-level fields seen per stream in `docs` (minus ignored ones): [(name, json path)]."""
        union = " UNION ".join(
            f"SELECT DISTINCT stream, unnest(json_keys({c})) AS name FROM {docs}" for c in data_columns
        )
        rows = self.con.execute(
            f"""WITH f AS ({union})
                SELECT f.stream, f.name, j.fullkey
                FROM f, json_tree(json_object(f.name, 0)) j
                WHERE j.fullkey <> '$' AND NOT {path_match_sql("j.fullkey", self.ignored)}
                ORDER BY f.stream, f.name""",
            used_params(union, self.params),
        ).fetchall()
        fields: dict[str, list[tuple[str, str]]] = {}
        for stream, name, path in rows:
            fields.setdefault(stream, []).append((name, path))
        return fields

    def keyed_field_diffs(self, pairs: str) -> str:
        """Tiers 2 and 3 for keyed pairs whose text differs: one row per differing field path."""
        candidates = self.scratch.create(
            "candidates",
            f"""SELECT p.stream, p.pkey, p.occ, p.cseq, p.tseq, rc.data AS cdata, rt.data AS tdata
                FROM {pairs} p
                JOIN {self.records("c", "rc")} rc ON rc.seq = p.cseq
                JOIN {self.records("t", "rt")} rt ON rt.seq = p.tseq
                WHERE p.keyed AND p.cseq IS NOT NULL AND p.tseq IS NOT NULL AND NOT p.same""",
            self.params,
        )
        top = self.scratch.create(
            "top_diffs",
            "SELECT ''::VARCHAR AS stream, ''::VARCHAR AS pkey, 0::BIGINT AS occ, ''::VARCHAR AS field,"
            " ''::VARCHAR AS fkey, NULL::JSON AS cv, NULL::JSON AS tv LIMIT 0",
        )
        for stream, fields in self.stream_fields(candidates, ("cdata", "tdata")).items():
            names = "[" + ", ".join(literal(name) for name, _ in fields) + "]"
            fkeys = "[" + ", ".join(literal(fkey) for _, fkey in fields) + "]"
            pointers = "[" + ", ".join(literal(json_pointer([name])) for name, _ in fields) + "]"
            self.con.execute(
                f"""INSERT INTO {top}
                    SELECT * FROM (
                        SELECT stream, pkey, occ, unnest({names}) AS field, unnest({fkeys}) AS fkey,
                               unnest(json_extract(cdata, {pointers})) AS cv,
                               unnest(json_extract(tdata, {pointers})) AS tv
                        FROM {candidates} WHERE stream = {literal(stream)})
                    WHERE cv::VARCHAR IS DISTINCT FROM tv::VARCHAR"""
            )
        return self._walk_down(top)

    def _walk_down(self, top: str) -> str:
        """Tier 3: descend from the differing top-level values into objects and arrays present on both
        sides, one level per query, keeping only children whose values still differ, until the values
        that differ are leaves (or of different types): those are the field diffs.

        Objects expand by the union of their keys, arrays by index, with JSON pointers computed per
        row (about 10x faster than json_tree, and subtrees that are equal are never expanded).
        """
        ids = "stream, pkey, occ, field"
        both_containers = f"coalesce(json_type(cv) IN {CONTAINER_TYPES} AND json_type(cv) = json_type(tv), FALSE)"
        ignored = path_match_sql(WILDCARD_INDEX_SQL.format("path"), self.ignored)
        diffs = self.scratch.create(
            "field_diffs",
            f"""SELECT {ids}, fkey AS path, ''::VARCHAR AS change, ''::VARCHAR AS cval, ''::VARCHAR AS tval
                FROM {top} LIMIT 0""",
        )
        level = self.scratch.create("level_0", f"SELECT {ids}, fkey AS path, cv, tv FROM {top}")
        depth = 0
        while True:
            depth += 1
            self.con.execute(
                f"""INSERT INTO {diffs}
                    SELECT {ids}, path,
                           CASE WHEN cv IS NULL THEN 'added' WHEN tv IS NULL THEN 'removed' ELSE 'changed' END,
                           cv::VARCHAR, tv::VARCHAR
                    FROM {level} WHERE NOT {both_containers}"""
            )
            level = self.scratch.create(
                f"level_{depth}",
                f"""WITH o AS (SELECT {ids}, path, cv, tv,
                                      unnest(list_distinct(list_concat(json_keys(cv), json_keys(tv)))) AS k
                               FROM {level} WHERE json_type(cv) = 'OBJECT' AND json_type(tv) = 'OBJECT'),
                         seg AS ({key_segments_sql("SELECT DISTINCT k FROM o")}),
                         a AS (SELECT {ids}, path, cv, tv,
                                      unnest(range(greatest(json_array_length(cv), json_array_length(tv))::BIGINT)) AS i
                               FROM {level} WHERE json_type(cv) = 'ARRAY' AND json_type(tv) = 'ARRAY'),
                         children AS (
                            SELECT {ids}, o.path || seg.seg AS path,
                                   json_extract(o.cv, seg.ptr) AS cv, json_extract(o.tv, seg.ptr) AS tv
                            FROM o JOIN seg USING (k)
                            UNION ALL
                            SELECT {ids}, path || '[' || i || ']',
                                   json_extract(cv, '/' || i), json_extract(tv, '/' || i)
                            FROM a)
                    SELECT * FROM children
                    WHERE cv::VARCHAR IS DISTINCT FROM tv::VARCHAR AND NOT {ignored}""",
            )
            remaining = self.con.execute(f"SELECT count(*) FROM {level}").fetchone()
            if not remaining or not remaining[0]:
                return diffs

    def side_docs(self, rows: str) -> str:
        """Query joining `rows` (side, stream, seq) to their record data: (side, stream, seq, data)."""
        return f"""(SELECT l.side, l.stream, l.seq, r.data FROM {rows} l
                    JOIN {self.records("c", "rc")} r ON l.side = 'c' AND r.seq = l.seq
                   UNION ALL
                   SELECT l.side, l.stream, l.seq, r.data FROM {rows} l
                    JOIN {self.records("t", "rt")} r ON l.side = 't' AND r.seq = l.seq)"""

    def multiset_leftovers(self, pairs: str) -> str:
        """Rows of keyless streams without an equal row on the other side: (side, stream, seq).

        Only (side, stream, seq, hash) flow through the joins; record data is read by seq where needed.
        """
        level1 = self.scratch.create(
            "ms_level1",
            f"""SELECT 'c' AS side, stream, cseq AS seq FROM {pairs} WHERE NOT keyed AND tseq IS NULL
                UNION ALL
                SELECT 't', stream, tseq FROM {pairs} WHERE NOT keyed AND cseq IS NULL""",
        )
        # Their data, read once: every later level scans it.
        docs = self.scratch.create("ms_docs", f"SELECT * FROM {self.side_docs(level1)}", self.params)
        # Level 2: top-level values in a fixed field order (top-level key order no longer matters).
        fields = self.stream_fields(docs, ("data",))
        hashes = []
        for stream, stream_fields in fields.items():
            pointers = "[" + ", ".join(literal(json_pointer([name])) for name, _ in stream_fields) + "]"
            hashes.append(f"WHEN {literal(stream)} THEN hash(json_extract(data, {pointers}))")
        level2_hash = f"CASE stream {' '.join(hashes)} END" if hashes else "0::UBIGINT"
        level2 = self._unpaired("ms_level2", f"SELECT side, stream, seq, ({level2_hash})::VARCHAR AS v FROM {docs}")
        # Level 3: every node (nested key order no longer matters, nested ignored fields left out).
        level3_docs = f"(SELECT d.* FROM {docs} d SEMI JOIN {level2} USING (side, stream, seq))"
        return self._unpaired("ms_level3", f"SELECT * FROM {self._node_set_hashes(level3_docs, fields)}")

    def _node_set_hashes(self, docs: str, fields: dict[str, list[tuple[str, str]]]) -> str:
        """(side, stream, seq, v) for `docs` (side, stream, seq, data): v identifies the document's set of
        (path, type, scalar value) nodes, so documents equal up to object key order get the same v.

        Walks the documents level by level like `_walk_down`; each level only adds two sums of node
        hashes (two hash functions, ~128 bits) and a node count per document, so memory stays flat.
        `fields`: top-level fields per stream (a superset is fine).
        """
        ids = "side, stream, seq"
        ignored = path_match_sql(WILDCARD_INDEX_SQL.format("path"), self.ignored)
        text = f"CASE WHEN json_type(v) IN {CONTAINER_TYPES} THEN NULL ELSE v::VARCHAR END"  # scalars only
        # Level 0 is the root object, level 1 its fields: read with a constant pointer list per stream
        # (fast, and the whole document is not repeated for each of its fields).
        partials = [
            self.scratch.create(
                "node_sums_root",
                f"""SELECT {ids}, sum(hash('$', json_type(data), NULL::VARCHAR)) AS s1,
                           sum(hash(NULL::VARCHAR, json_type(data), '$')) AS s2, count(*) AS n
                    FROM {docs} GROUP BY ALL""",
                self.params,
            )
        ]
        level = self.scratch.create(
            "node_level_1",
            "SELECT ''::VARCHAR AS side, ''::VARCHAR AS stream, 0::BIGINT AS seq, ''::VARCHAR AS path, NULL::JSON AS v"
            " LIMIT 0",
        )
        for stream, stream_fields in fields.items():
            fkeys = "[" + ", ".join(literal(fkey) for _, fkey in stream_fields) + "]"
            pointers = "[" + ", ".join(literal(json_pointer([name])) for name, _ in stream_fields) + "]"
            self.con.execute(
                f"""INSERT INTO {level}
                    SELECT * FROM (SELECT {ids}, unnest({fkeys}) AS path, unnest(json_extract(data, {pointers})) AS v
                                   FROM {docs} WHERE stream = {literal(stream)})
                    WHERE v IS NOT NULL AND NOT {ignored}""",
                used_params(docs, self.params),
            )
        depth = 1
        while True:
            partials.append(
                self.scratch.create(
                    f"node_sums_{depth}",
                    f"""SELECT {ids}, sum(hash(path, json_type(v), {text})) AS s1,
                               sum(hash({text}, json_type(v), path)) AS s2, count(*) AS n
                        FROM {level} GROUP BY ALL""",
                )
            )
            depth += 1
            children = self.scratch.create(
                f"node_level_{depth}",
                f"""WITH o AS (SELECT {ids}, path, v, unnest(json_keys(v)) AS k FROM {level}
                               WHERE json_type(v) = 'OBJECT'),
                         seg AS ({key_segments_sql("SELECT DISTINCT k FROM o")})
                    SELECT * FROM (
                        SELECT {ids}, o.path || seg.seg AS path, json_extract(o.v, seg.ptr) AS v
                        FROM o JOIN seg USING (k)
                        UNION ALL
                        SELECT {ids}, path || '[' || i || ']', json_extract(v, '/' || i)
                        FROM (SELECT {ids}, path, v, unnest(range(json_array_length(v)::BIGINT)) AS i
                              FROM {level} WHERE json_type(v) = 'ARRAY'))
                    WHERE NOT {ignored}""",
            )
            self.scratch.drop(level)  # the frontier holds document text: free it as soon as possible
            level = children
            remaining = self.con.execute(f"SELECT count(*) FROM {level}").fetchone()
            if not remaining or not remaining[0]:
                break
        union = " UNION ALL ".join(f"SELECT * FROM {p}" for p in partials)
        return self.scratch.create(
            "node_set_hashes",
            f"""SELECT {ids}, sum(s1)::VARCHAR || ':' || sum(s2)::VARCHAR || ':' || sum(n)::VARCHAR AS v
                FROM ({union}) GROUP BY ALL""",
        )

    def _unpaired(self, label: str, source: str) -> str:
        """Multiset difference both ways on column v: rows of either side left after pairing."""
        return self.scratch.create(
            label,
            f"""WITH s AS ({source}),
                     n AS (SELECT s.*, row_number() OVER (PARTITION BY side, stream, v ORDER BY seq) AS occ FROM s)
                SELECT c.side, c.stream, c.seq FROM (SELECT * FROM n WHERE side = 'c') c
                    ANTI JOIN (SELECT * FROM n WHERE side = 't') t USING (stream, v, occ)
                UNION ALL
                SELECT t.side, t.stream, t.seq FROM (SELECT * FROM n WHERE side = 't') t
                    ANTI JOIN (SELECT * FROM n WHERE side = 'c') c USING (stream, v, occ)""",
            self.params,
        )

    def outcomes(self, pairs: str, field_diffs: str) -> str:
        """One row per record that differs: (stream, kind, pkey, occ, cseq, tseq, values_changed)."""
        leftovers = self.multiset_leftovers(pairs)
        return self.scratch.create(
            "outcome",
            f"""SELECT stream, CASE WHEN tseq IS NULL THEN '{MISSING}' ELSE '{EXTRA}' END AS kind,
                       pkey, occ, cseq, tseq, FALSE AS values_changed
                FROM {pairs} WHERE keyed AND (cseq IS NULL OR tseq IS NULL)
                UNION ALL
                SELECT p.stream, '{CHANGED}', p.pkey, p.occ, p.cseq, p.tseq, d.values_changed
                FROM {pairs} p JOIN (SELECT stream, pkey, occ, bool_or(change <> 'added') AS values_changed
                                     FROM {field_diffs} GROUP BY ALL) d USING (stream, pkey, occ)
                UNION ALL
                SELECT stream, CASE side WHEN 'c' THEN '{MISSING}' ELSE '{EXTRA}' END, NULL, NULL,
                       CASE side WHEN 'c' THEN seq END, CASE side WHEN 't' THEN seq END, FALSE
                FROM {leftovers}""",
        )


def _collect_stats(
    con: duckdb.DuckDBPyConnection,
    result: RecordsComparison,
    run: _Run,
    outcome: str,
    field_diffs: str,
    keys: dict[str, list[list[str]]],
) -> None:
    rows = fetch_dicts(
        con,
        f"""WITH sides AS (
                SELECT stream, count(*) AS control_count, 0 AS target_count,
                       count(*) FILTER (WHERE keyed AND occ = 2) AS dup_c, 0 AS dup_t
                FROM {run.numbered["c"]} GROUP BY stream
                UNION ALL
                SELECT stream, 0, count(*), 0, count(*) FILTER (WHERE keyed AND occ = 2)
                FROM {run.numbered["t"]} GROUP BY stream),
            o AS (SELECT stream, count(*) FILTER (WHERE kind = '{MISSING}') AS missing,
                         count(*) FILTER (WHERE kind = '{EXTRA}') AS extra,
                         count(*) FILTER (WHERE kind = '{CHANGED}') AS changed,
                         count(*) FILTER (WHERE kind = '{CHANGED}' AND values_changed) AS changed_values
                  FROM {outcome} GROUP BY stream)
            SELECT s.stream, sum(control_count) AS control_count, sum(target_count) AS target_count,
                   sum(dup_c) AS dup_c, sum(dup_t) AS dup_t,
                   any_value(o.missing) AS missing, any_value(o.extra) AS extra,
                   any_value(o.changed) AS changed, any_value(o.changed_values) AS changed_values
            FROM sides s LEFT JOIN o USING (stream) GROUP BY s.stream ORDER BY s.stream""",
    )
    for row in rows:
        stream = row["stream"]
        result.streams[stream] = StreamRecordsDiff(
            stream=stream,
            primary_key=keys.get(stream),
            control_count=int(row["control_count"]),
            target_count=int(row["target_count"]),
            missing_in_target=int(row["missing"] or 0),
            extra_in_target=int(row["extra"] or 0),
            changed=int(row["changed"] or 0),
            changed_values=int(row["changed_values"] or 0),
            duplicate_keys_control=int(row["dup_c"]),
            duplicate_keys_target=int(row["dup_t"]),
        )
    wildcard = WILDCARD_INDEX_SQL.format("path")
    for stream, path, change, count in con.execute(
        f"""SELECT stream, {wildcard} AS wpath, change, count(DISTINCT (pkey, occ)) AS n FROM {field_diffs}
            GROUP BY ALL ORDER BY stream, n DESC, wpath, change"""
    ).fetchall():
        result.streams[stream].field_diffs.append(FieldDiffCount(path, change, count))
    for stream, name, count in con.execute(
        f"""SELECT stream, field, count(DISTINCT (pkey, occ)) AS n FROM {field_diffs}
            GROUP BY ALL ORDER BY stream, n DESC, field"""
    ).fetchall():
        result.streams[stream].top_level_field_diffs[name] = count


def _collect_examples(
    con: duckdb.DuckDBPyConnection,
    result: RecordsComparison,
    run: _Run,
    outcome: str,
    field_diffs: str,
    max_examples: int,
) -> None:
    """The first `max_examples` differing records per stream and kind, with their field diffs."""
    examples = run.scratch.create(
        "examples",
        f"""SELECT * FROM (
                SELECT o.*, row_number() OVER (PARTITION BY stream, kind ORDER BY coalesce(cseq, tseq)) AS rn
                FROM {outcome} o)
            WHERE rn <= {int(max_examples)}""",
    )
    rows = con.execute(
        f"""WITH d AS (
                SELECT f.stream, f.pkey, f.occ,
                       list({{'path': f.path, 'change': f.change, 'control': f.cval, 'target': f.tval}}
                            ORDER BY f.path) AS differences
                FROM {field_diffs} f SEMI JOIN {examples} e USING (stream, pkey, occ) GROUP BY ALL)
            SELECT e.stream, e.kind, e.pkey, d.differences, rc.data::VARCHAR, rt.data::VARCHAR
            FROM {examples} e
            LEFT JOIN d ON d.stream = e.stream AND d.pkey = e.pkey AND d.occ = e.occ
            LEFT JOIN {run.records("c", "rc")} rc ON rc.seq = e.cseq
            LEFT JOIN {run.records("t", "rt")} rt ON rt.seq = e.tseq
            ORDER BY e.stream, e.kind, e.rn""",
        run.params,
    ).fetchall()
    for stream, kind, pkey, differences, c_data, t_data in rows:
        result.streams[stream].examples.append(
            {
                "kind": kind,
                "key": parse_json(pkey) if pkey and not pkey.startswith("#") else None,
                "differences": [
                    {**d, "control": parse_json(d["control"]), "target": parse_json(d["target"])}
                    for d in differences or []
                ],
                "control": parse_json(c_data),
                "target": parse_json(t_data),
            }
        )


def _stream_findings(diff: StreamRecordsDiff) -> list[Finding]:
    s = diff.stream
    if diff.control_count and not diff.target_count:
        return [
            Finding(
                "stream_missing_in_target", Severity.BREAKING,
                f"`{s}`: {diff.control_count} records in control, none in target",
                stream=s, control=diff.control_count, target=0, count=diff.control_count,
            )
        ]  # fmt: skip
    if diff.target_count and not diff.control_count:
        return [
            Finding(
                "stream_extra_in_target", Severity.CHANGE,
                f"`{s}`: no records in control, {diff.target_count} in target",
                stream=s, control=0, target=diff.target_count, count=diff.target_count,
            )
        ]  # fmt: skip
    findings = []
    if diff.control_count != diff.target_count:
        findings.append(
            Finding(
                "record_count_changed", Severity.CHANGE,
                f"`{s}`: record count {diff.control_count} -> {diff.target_count}",
                stream=s, control=diff.control_count, target=diff.target_count,
            )
        )  # fmt: skip
    what = "primary keys" if diff.keyed else "records"
    examples = {
        kind: [
            e["key"] if diff.keyed else e["control" if kind == MISSING else "target"]
            for e in diff.examples
            if e["kind"] == kind
        ][:5]
        for kind in (MISSING, EXTRA)
    }
    for kind, count, severity in ((MISSING, diff.missing_in_target, Severity.BREAKING),
                                  (EXTRA, diff.extra_in_target, Severity.CHANGE)):  # fmt: skip
        if not count:
            continue
        sides = "control {what} not in target" if kind == MISSING else "target {what} not in control"
        example = f" (e.g. {short(examples[kind][0], 80)})" if examples[kind] else ""
        finding_kind = (
            ("missing" if kind == MISSING else "extra") + "_primary_keys" if diff.keyed else "records_" + kind
        )
        findings.append(
            Finding(
                finding_kind, severity, f"`{s}`: {count} {sides.format(what=what)}{example}",
                stream=s, count=count, **{"control" if kind == MISSING else "target": examples[kind]},
            )
        )  # fmt: skip
    kinds = {
        "changed": ("record_field_changed", Severity.BREAKING, "differs"),
        "removed": ("record_field_removed", Severity.BREAKING, "is missing in target"),
        "added": ("record_field_added", Severity.CHANGE, "is new in target"),
    }
    for fd in diff.field_diffs:
        kind, severity, verb = kinds[fd.change]
        findings.append(
            Finding(
                kind,
                severity,
                f"`{s}`: {fd.path} {verb} in {fd.records} records",
                stream=s,
                path=fd.path,
                count=fd.records,
            )
        )
    if diff.duplicate_keys_target > diff.duplicate_keys_control:
        findings.append(
            Finding(
                "duplicate_primary_keys", Severity.CHANGE,
                f"`{s}`: {diff.duplicate_keys_target} duplicated primary keys in target"
                f" (control {diff.duplicate_keys_control})",
                stream=s, control=diff.duplicate_keys_control, target=diff.duplicate_keys_target,
            )
        )  # fmt: skip
    elif diff.duplicate_keys_control:
        findings.append(
            Finding(
                "duplicate_primary_keys", Severity.INFO,
                f"`{s}`: duplicated primary keys: control {diff.duplicate_keys_control},"
                f" target {diff.duplicate_keys_target}",
                stream=s, control=diff.duplicate_keys_control, target=diff.duplicate_keys_target,
            )
        )  # fmt: skip
    return findings
