"""From the pairing tables to results: one outcome row per differing record, per-stream statistics,
field diff tallies and the first differing records as examples."""

from __future__ import annotations

from typing import Any

from live_tests.compare.diff import parse_json
from live_tests.compare.record_multiset import MultisetTables
from live_tests.compare.record_results import (
    CHANGED,
    EXTRA,
    MISSING,
    REMOVED,
    VALUE_CHANGED,
    FieldDiffCount,
    StreamRecordsDiff,
)
from live_tests.compare.record_sides import Sides
from live_tests.sql import WILDCARD_INDEX_SQL, fetch_dicts


def outcomes(sides: Sides, pairs: str, field_diffs: str, multiset: MultisetTables) -> str:
    """One row per record that differs: (stream, kind, pkey, occ, cseq, tseq, values_changed).

    `field_diffs` holds the field diffs of keyed pairs and of keyless null-vs-absent pairs.
    """
    return sides.scratch.create(
        "outcome",
        f"""SELECT stream, CASE WHEN tseq IS NULL THEN '{MISSING}' ELSE '{EXTRA}' END AS kind,
                   pkey, occ, cseq, tseq, FALSE AS values_changed
            FROM {pairs} WHERE keyed AND (cseq IS NULL OR tseq IS NULL)
            UNION ALL
            SELECT p.stream, '{CHANGED}', p.pkey, p.occ, p.cseq, p.tseq, d.values_changed
            FROM (SELECT stream, pkey, occ, cseq, tseq FROM {pairs} WHERE keyed AND cseq IS NOT NULL
                  AND tseq IS NOT NULL
                  UNION ALL SELECT stream, pkey, occ, cseq, tseq FROM {multiset.null_pairs}) p
            JOIN (SELECT stream, pkey, occ, bool_or(change IN ('{VALUE_CHANGED}', '{REMOVED}')) AS values_changed
                  FROM {field_diffs} GROUP BY ALL) d USING (stream, pkey, occ)
            UNION ALL
            SELECT stream, CASE side WHEN 'c' THEN '{MISSING}' ELSE '{EXTRA}' END, NULL, NULL,
                   CASE side WHEN 'c' THEN seq END, CASE side WHEN 't' THEN seq END, FALSE
            FROM {multiset.leftovers}""",
    )


def stream_stats(
    sides: Sides, numbered_c: str, numbered_t: str, outcome: str, keys: dict[str, list[list[str]]]
) -> dict[str, StreamRecordsDiff]:
    """Counts per stream: records on each side, duplicate keys, and outcomes by kind."""
    rows = fetch_dicts(
        sides.con,
        f"""WITH sides AS (
                SELECT stream, count(*) AS control_count, 0 AS target_count,
                       count(*) FILTER (WHERE keyed AND occ = 2) AS dup_c, 0 AS dup_t
                FROM {numbered_c} GROUP BY stream
                UNION ALL
                SELECT stream, 0, count(*), 0, count(*) FILTER (WHERE keyed AND occ = 2)
                FROM {numbered_t} GROUP BY stream),
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
    return {
        row["stream"]: StreamRecordsDiff(
            stream=row["stream"],
            primary_key=keys.get(row["stream"]),
            control_count=int(row["control_count"]),
            target_count=int(row["target_count"]),
            missing_in_target=int(row["missing"] or 0),
            extra_in_target=int(row["extra"] or 0),
            changed=int(row["changed"] or 0),
            changed_values=int(row["changed_values"] or 0),
            duplicate_keys_control=int(row["dup_c"]),
            duplicate_keys_target=int(row["dup_t"]),
        )
        for row in rows
    }


def field_diff_counts(sides: Sides, field_diffs: str) -> dict[str, list[FieldDiffCount]]:
    """Per stream: records differing per (wildcarded path, change), most records first."""
    counts: dict[str, list[FieldDiffCount]] = {}
    for stream, path, change, n in sides.con.execute(
        f"""SELECT stream, {WILDCARD_INDEX_SQL.format("path")} AS wpath, change, count(DISTINCT (pkey, occ)) AS n
            FROM {field_diffs} GROUP BY ALL ORDER BY stream, n DESC, wpath, change"""
    ).fetchall():
        counts.setdefault(stream, []).append(FieldDiffCount(path, change, n))
    return counts


def top_level_counts(sides: Sides, field_diffs: str) -> dict[str, dict[str, int]]:
    """Per stream: records differing per top-level field, most records first."""
    counts: dict[str, dict[str, int]] = {}
    for stream, name, n in sides.con.execute(
        f"""SELECT stream, field, count(DISTINCT (pkey, occ)) AS n FROM {field_diffs}
            GROUP BY ALL ORDER BY stream, n DESC, field"""
    ).fetchall():
        counts.setdefault(stream, {})[name] = n
    return counts


def examples(sides: Sides, outcome: str, field_diffs: str, max_examples: int) -> dict[str, list[dict[str, Any]]]:
    """Per stream, the first `max_examples` differing records of each kind, with their field diffs:
    {"kind", "key" (None for keyless), "differences": [{path, change, control, target}], "control", "target"}."""
    firsts = sides.scratch.create(
        "examples",
        f"""SELECT * FROM (
                SELECT o.*, row_number() OVER (PARTITION BY stream, kind ORDER BY coalesce(cseq, tseq)) AS rn
                FROM {outcome} o)
            WHERE rn <= {int(max_examples)}""",
    )
    rows = sides.con.execute(
        f"""WITH d AS (
                SELECT f.stream, f.pkey, f.occ,
                       list({{'path': f.path, 'change': f.change, 'control': f.cval, 'target': f.tval}}
                            ORDER BY f.path) AS differences
                FROM {field_diffs} f SEMI JOIN {firsts} e USING (stream, pkey, occ) GROUP BY ALL)
            SELECT e.stream, e.kind, e.pkey, d.differences, rc.data::VARCHAR, rt.data::VARCHAR
            FROM {firsts} e
            LEFT JOIN d ON d.stream = e.stream AND d.pkey = e.pkey AND d.occ = e.occ
            LEFT JOIN {sides.records("c", "rc")} rc ON rc.seq = e.cseq
            LEFT JOIN {sides.records("t", "rt")} rt ON rt.seq = e.tseq
            ORDER BY e.stream, e.kind, e.rn""",
        sides.params,
    ).fetchall()
    found: dict[str, list[dict[str, Any]]] = {}
    for stream, kind, pkey, differences, c_data, t_data in rows:
        found.setdefault(stream, []).append(
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
    return found
