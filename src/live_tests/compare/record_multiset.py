"""Keyless streams: the records of control and target compared as multisets (EXCEPT ALL semantics).

Records whose text hashes pair in tier 1 (see record_pairing) are equal. The rest go through
levels of ever finer identity, each a multiset difference both ways on a value v:
2. the hash of the top-level values in a fixed field order (top-level key order no longer matters);
3. the set of (path, type, scalar) nodes (nested key order no longer matters, ignored paths out);
4. the same set without the null fields (not array elements): records left over at level 3 that
   pair here are the same record up to fields null on one side and absent on the other.
Only (side, stream, seq, hash) flow through the joins; record data is read by seq where needed.
"""

from __future__ import annotations

from dataclasses import dataclass

from live_tests.compare.json_walk import StreamFields, stream_fields, walk_levels
from live_tests.compare.record_results import ABSENT_TO_NULL, NULL_TO_ABSENT
from live_tests.compare.record_sides import Sides
from live_tests.sql import CONTAINER_TYPES, json_pointer, literal

# A null node that counts at level 4: a field, not an array element ([null] and [] differ in length).
_NULL_FIELD = "json_type(v) = 'NULL' AND NOT ends_with(path, ']')"


@dataclass(frozen=True)
class MultisetTables:
    leftovers: str  # (side, stream, seq): records with no equal record on the other side
    # (stream, pkey, occ, cseq, tseq): records equal up to null-vs-absent fields, paired
    null_pairs: str
    # (stream, pkey, occ, field, path, change, cval, tval) of those pairs, like keyed field diffs
    null_diffs: str


def multiset_differences(sides: Sides, pairs: str) -> MultisetTables:
    """Levels 2-4 for the keyless records `pairs` (from pair_records) left unpaired."""
    scratch = sides.scratch
    level1 = scratch.create(
        "ms_level1",
        f"""SELECT 'c' AS side, stream, cseq AS seq FROM {pairs} WHERE NOT keyed AND tseq IS NULL
            UNION ALL
            SELECT 't', stream, tseq FROM {pairs} WHERE NOT keyed AND cseq IS NULL""",
    )
    # Their data, read once: every later level scans it.
    docs = scratch.create("ms_docs", f"SELECT * FROM {sides.docs(level1)}", sides.params)
    fields = stream_fields(sides.con, docs, ("data",), skip=sides.ignore.sql)
    hashes = []
    for stream, stream_fields_ in fields.items():
        pointers = "[" + ", ".join(literal(json_pointer([name])) for name, _ in stream_fields_) + "]"
        hashes.append(f"WHEN {literal(stream)} THEN hash(json_extract(data, {pointers}))")
    level2_hash = f"CASE stream {' '.join(hashes)} END" if hashes else "0::UBIGINT"
    level2 = _unpaired(sides, "ms_level2", f"SELECT side, stream, seq, ({level2_hash})::VARCHAR AS v FROM {docs}")
    level3_docs = scratch.create(
        "ms_level3_docs", f"SELECT d.* FROM {docs} d SEMI JOIN {level2} USING (side, stream, seq)"
    )
    scratch.drop(docs)
    nodes = _node_set_hashes(sides, level3_docs, fields)
    level3 = _unpaired(sides, "ms_level3", f"SELECT side, stream, seq, v FROM {nodes.hashes}")
    level4_input = (
        f"SELECT side, stream, seq, v_fields AS v FROM {nodes.hashes} SEMI JOIN {level3} USING (side, stream, seq)"
    )
    level4 = _unpaired(sides, "ms_level4", level4_input)
    null_pairs = scratch.create(
        "ms_null_pairs",
        f"""WITH s AS ({level4_input} ANTI JOIN {level4} USING (side, stream, seq)),
                 n AS (SELECT s.*, row_number() OVER (PARTITION BY side, stream, v ORDER BY seq) AS occ FROM s)
            SELECT stream, '#' || v AS pkey, occ, c.seq AS cseq, t.seq AS tseq
            FROM (SELECT * FROM n WHERE side = 'c') c
            JOIN (SELECT * FROM n WHERE side = 't') t USING (stream, v, occ)""",
    )
    null_diffs = scratch.create(
        "ms_null_diffs",
        f"""WITH p AS (SELECT * FROM {null_pairs}),
                 c AS (SELECT p.stream, p.pkey, p.occ, n.field, n.path FROM p
                       JOIN {nodes.nulls} n ON n.side = 'c' AND n.seq = p.cseq),
                 t AS (SELECT p.stream, p.pkey, p.occ, n.field, n.path FROM p
                       JOIN {nodes.nulls} n ON n.side = 't' AND n.seq = p.tseq)
            SELECT *, '{NULL_TO_ABSENT}' AS change, 'null' AS cval, NULL::VARCHAR AS tval
            FROM (SELECT * FROM c EXCEPT SELECT * FROM t)
            UNION ALL
            SELECT *, '{ABSENT_TO_NULL}', NULL, 'null' FROM (SELECT * FROM t EXCEPT SELECT * FROM c)""",
    )
    return MultisetTables(level4, null_pairs, null_diffs)


@dataclass(frozen=True)
class _NodeTables:
    hashes: str  # (side, stream, seq, v, v_fields): node-set identity with and without null fields
    nulls: str  # (side, stream, seq, field, path): the null fields


def _node_set_hashes(sides: Sides, docs: str, fields: StreamFields) -> _NodeTables:
    """For `docs` (side, stream, seq, data): v identifies the document's set of (path, type, scalar value)
    nodes, so documents equal up to object key order get the same v; v_fields the same without null
    fields. Each level only adds sums of node hashes (two hash functions, ~128 bits) and node counts
    per document, so memory stays flat. `fields`: top-level fields per stream (a superset is fine).
    """
    ids = "side, stream, seq"
    scratch = sides.scratch
    text = f"CASE WHEN json_type(v) IN {CONTAINER_TYPES} THEN NULL ELSE v::VARCHAR END"  # scalars only
    root = scratch.create(
        "node_sums_root",
        f"""SELECT *, s1 AS f1, s2 AS f2, n AS fn
            FROM (SELECT {ids}, sum(hash('$', json_type(data), NULL::VARCHAR)) AS s1,
                         sum(hash(NULL::VARCHAR, json_type(data), '$')) AS s2, count(*) AS n
                  FROM {docs} GROUP BY ALL)""",
    )
    partials = [root]
    nulls = scratch.create(
        "null_fields", f"SELECT {ids}, ''::VARCHAR AS field, ''::VARCHAR AS path FROM {docs} LIMIT 0"
    )

    def visit(level: str, depth: int) -> None:
        node_hash1, node_hash2 = f"hash(path, json_type(v), {text})", f"hash({text}, json_type(v), path)"
        partials.append(
            scratch.create(
                f"node_sums_{depth}",
                f"""SELECT {ids}, sum({node_hash1}) AS s1, sum({node_hash2}) AS s2, count(*) AS n,
                           coalesce(sum({node_hash1}) FILTER (WHERE NOT ({_NULL_FIELD})), 0) AS f1,
                           coalesce(sum({node_hash2}) FILTER (WHERE NOT ({_NULL_FIELD})), 0) AS f2,
                           count(*) FILTER (WHERE NOT ({_NULL_FIELD})) AS fn
                    FROM {level} GROUP BY ALL""",
            )
        )
        sides.con.execute(f"INSERT INTO {nulls} SELECT {ids}, field, path FROM {level} WHERE {_NULL_FIELD}")

    walk_levels(sides.con, scratch, docs, fields, visit, ids=ids, skip=sides.ignore.sql)
    union = " UNION ALL ".join(f"SELECT * FROM {p}" for p in partials)
    hashes = scratch.create(
        "node_set_hashes",
        f"""SELECT {ids}, sum(s1)::VARCHAR || ':' || sum(s2)::VARCHAR || ':' || sum(n)::VARCHAR AS v,
                   sum(f1)::VARCHAR || ':' || sum(f2)::VARCHAR || ':' || sum(fn)::VARCHAR AS v_fields
            FROM ({union}) GROUP BY ALL""",
    )
    return _NodeTables(hashes, nulls)


def _unpaired(sides: Sides, label: str, source: str) -> str:
    """Multiset difference both ways on column v: rows of either side left after pairing."""
    return sides.scratch.create(
        label,
        f"""WITH s AS ({source}),
                 n AS (SELECT s.*, row_number() OVER (PARTITION BY side, stream, v ORDER BY seq) AS occ FROM s)
            SELECT c.side, c.stream, c.seq FROM (SELECT * FROM n WHERE side = 'c') c
                ANTI JOIN (SELECT * FROM n WHERE side = 't') t USING (stream, v, occ)
            UNION ALL
            SELECT t.side, t.stream, t.seq FROM (SELECT * FROM n WHERE side = 't') t
                ANTI JOIN (SELECT * FROM n WHERE side = 'c') c USING (stream, v, occ)""",
        sides.params,
    )
