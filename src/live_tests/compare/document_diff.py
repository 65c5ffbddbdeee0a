"""Diff two sets of JSON documents path by path, in SQL: every added, removed and changed path.

Input: a table with columns `side` ('control'/'target'), `scope` (e.g. a stream name: documents
are paired by scope; a scope on one side only is left to the caller) and `doc` (JSON). Both
sides' documents are flattened with `json_tree` and joined on (scope, JSON path), so key order
never matters. A change is reported once, at the topmost path that differs: an added object is
one change, not one per leaf inside it.

Arrays are compared element by element, except:
- sets (`SET_KEYS`: `required`, `enum`, `type`, sync modes), compared as sorted distinct values,
  and a `type` string is the one-element set it means;
- values compared whole (`WHOLE_KEYS`: `examples`, `default`, primary key, cursor, ...), where a
  single change is more useful than one per element.
Both only apply to keywords: a *property* named `type` or `default` is walked like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb

from live_tests.compare.diff import parse_json
from live_tests.sql import CONTAINER_TYPES, Scratch, canonical_sql, fetch_dicts, key_segments_sql

# Arrays whose order carries no meaning.
SET_KEYS = ("required", "enum", "type", "supported_sync_modes", "supportedDestinationSyncModes")
# Values reported as one change when anything inside them differs.
WHOLE_KEYS = ("examples", "default", "const", "groups", "source_defined_primary_key", "default_cursor_field")
# Objects whose keys are names chosen by the author (of properties, definitions), not keywords.
_NAME_MAPS = ("properties", "patternProperties", "definitions", "$defs")
_BATCH_BYTES = 400_000


def _sql_list(values: tuple[str, ...]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


@dataclass(frozen=True)
class DocumentChange:
    """One differing path, with what the classification rules need to know about its position."""

    scope: str
    path: str  # JSON path in the document, as json_tree writes it: `$.properties."b c".type`
    change: str  # "added" | "removed" | "changed"
    key: str | None  # the last path segment (an array element's index as text)
    parent_path: str
    is_property: bool  # a member of a `properties` object: a property, not a keyword
    is_keyword: bool  # a member of a schema / document object (`type`, `title`, `required`, ...)
    in_array: bool  # an array element (e.g. one `oneOf` option)
    parent_key: str | None  # the key of the parent (`oneOf` for an option)
    schema_path: str | None  # for a property: the schema whose `properties` hold it
    control: Any  # the control value at `path` (None when added); sets come sorted
    target: Any

    @property
    def top_level(self) -> bool:
        return self.parent_path == "$"


@dataclass
class DocumentDiff:
    changes: list[DocumentChange] = field(default_factory=list)
    properties: dict[str, int] = field(default_factory=dict)  # side -> properties in its documents
    # Path segment of each name listed in a changed `required` (`.name`, `."b c"`), so rules can
    # name the property.
    segments: dict[str, str] = field(default_factory=dict)


def diff_documents(con: duckdb.DuckDBPyConnection, scratch: Scratch, docs: str) -> DocumentDiff:
    """Every path that differs between the control and target documents of each scope on both sides.

    Scopes are diffed in batches of about `_BATCH_BYTES` of JSON, so a catalog of thousands of
    streams fits the session's memory limit (json_tree makes ~100 bytes per node).
    """
    result = DocumentDiff()
    batches = scratch.create(
        "doc_batches",
        f"""SELECT scope, sum(sum(length(doc::VARCHAR))) OVER (ORDER BY scope) // {_BATCH_BYTES} AS batch
            FROM {docs} GROUP BY scope HAVING count(DISTINCT side) = 2""",
    )
    for (batch,) in con.execute(f"SELECT DISTINCT batch FROM {batches} ORDER BY batch").fetchall():
        part = scratch.create(
            "doc_part",
            f"SELECT d.* FROM {docs} d SEMI JOIN {batches} b ON b.scope = d.scope AND b.batch = $batch",
            {"batch": batch},
        )
        _diff_batch(con, scratch, part, result)
    result.segments = _segments(con, _required_names(result.changes))
    return result


def _diff_batch(con: duckdb.DuckDBPyConnection, scratch: Scratch, docs: str, result: DocumentDiff) -> None:
    # A container's value is the bulk of json_tree's output: kept only where it is compared whole
    # (sets, whole values); an added or removed container is read back from its document at the end.
    nodes = scratch.create(
        "doc_nodes",
        f"""SELECT d.side, d.scope, j.id, j.parent, j.key, j.fullkey AS path, j.path AS parent_path, j.type,
                   CASE WHEN j.type NOT IN {CONTAINER_TYPES} OR j.key IN ({_sql_list(SET_KEYS + WHOLE_KEYS)})
                        THEN j.value END AS value
            FROM {docs} d, json_tree(d.doc) j""",
    )
    matched = _match_options(scratch, docs, nodes)
    # A node's position: property, keyword, or array element; and its shape for comparing.
    in_name_map = f"""coalesce(p.type = 'OBJECT' AND p.key IN ({_sql_list(_NAME_MAPS)}) AND g.type = 'OBJECT'
                               AND g.key IS DISTINCT FROM 'properties', FALSE)"""
    is_keyword = f"(coalesce(p.type = 'OBJECT', FALSE) AND NOT {in_name_map})"
    shaped = scratch.create(
        "doc_shaped",
        f"""SELECT n.side, n.scope, n.id, n.parent, n.key, n.path, n.parent_path, n.type, n.value,
                   coalesce(m.match_path, n.path) AS match_path,
                   coalesce(m.parent_match, n.parent_path) AS parent_match,
                   p.key AS parent_key, coalesce(p.type = 'ARRAY', FALSE) AS in_array,
                   {in_name_map} AND p.key = 'properties' AS is_property, {is_keyword} AS is_keyword,
                   p.parent_path AS schema_path,
                   CASE WHEN {is_keyword} AND n.key IN ({_sql_list(SET_KEYS)})
                             AND (n.type = 'ARRAY' OR (n.key = 'type' AND n.type = 'VARCHAR')) THEN 'set'
                        WHEN {is_keyword} AND n.key IN ({_sql_list(WHOLE_KEYS)}) THEN 'whole'
                        WHEN n.type IN {CONTAINER_TYPES} THEN 'container'
                        ELSE 'atom' END AS shape
            FROM {nodes} n
            LEFT JOIN {nodes} p ON p.side = n.side AND p.scope = n.scope AND p.id = n.parent
            LEFT JOIN {nodes} g ON g.side = p.side AND g.scope = p.scope AND g.id = p.parent
            LEFT JOIN {matched} m ON m.side = n.side AND m.scope = n.scope AND m.id = n.id""",
    )
    scratch.drop(nodes)
    scratch.drop(matched)
    # What lies inside a set or whole value is compared through it, never on its own.
    inside = scratch.create(
        "doc_inside",
        f"""WITH RECURSIVE below(side, scope, id) AS (
                SELECT n.side, n.scope, n.id FROM {shaped} n
                JOIN {shaped} l ON l.side = n.side AND l.scope = n.scope AND l.id = n.parent
                WHERE l.shape IN ('set', 'whole')
                UNION
                SELECT n.side, n.scope, n.id FROM {shaped} n
                JOIN below b ON b.side = n.side AND b.scope = n.scope AND n.parent = b.id)
            SELECT DISTINCT * FROM below""",
    )
    whole = f"(SELECT side, scope, id, value FROM {shaped} WHERE shape = 'whole')"
    sorted_set = (
        "'[' || array_to_string(list_sort(list_distinct(CASE WHEN s.type = 'ARRAY'"
        " THEN json_extract(s.value, '$[*]')::VARCHAR[] ELSE [s.value::VARCHAR] END)), ',') || ']'"
    )
    compared = scratch.create(
        "doc_compared",
        f"""SELECT s.*, CASE s.shape WHEN 'set' THEN {sorted_set} WHEN 'whole' THEN w.canon
                             WHEN 'atom' THEN s.value::VARCHAR END AS cmp,
                   CASE s.shape WHEN 'set' THEN {sorted_set} ELSE s.value::VARCHAR END AS shown
            FROM {shaped} s
            LEFT JOIN ({canonical_sql(whole, "side, scope, id", "value")}) w USING (side, scope, id)
            ANTI JOIN {inside} i USING (side, scope, id)""",
    )
    scratch.drop(shaped)
    pairs = scratch.create(
        "doc_pairs",
        f"""SELECT coalesce(c.scope, t.scope) AS scope, coalesce(t.path, c.path) AS path,
                   c.path AS control_path, t.path AS target_path,
                   coalesce(c.match_path, t.match_path) AS match_path,
                   coalesce(c.parent_match, t.parent_match) AS parent_match,
                   coalesce(t.parent_path, c.parent_path) AS parent_path, coalesce(c.key, t.key) AS key,
                   coalesce(c.parent_key, t.parent_key) AS parent_key, coalesce(c.in_array, t.in_array) AS in_array,
                   coalesce(c.is_property, t.is_property) AS is_property,
                   coalesce(c.is_keyword, t.is_keyword) AS is_keyword,
                   coalesce(t.schema_path, c.schema_path) AS schema_path,
                   c.path IS NOT NULL AS in_control, t.path IS NOT NULL AS in_target,
                   c.shape AS control_shape, t.shape AS target_shape, c.cmp AS control_cmp, t.cmp AS target_cmp,
                   c.shown AS control, t.shown AS target,
                   coalesce(c.shape = 'container' AND t.shape = 'container' AND c.type = t.type, FALSE) AS walked
            FROM (SELECT * FROM {compared} WHERE side = 'control') c
            FULL OUTER JOIN (SELECT * FROM {compared} WHERE side = 'target') t
                ON c.scope = t.scope AND c.match_path = t.match_path""",
    )
    # Topmost differences only: a path counts when its parent is the same kind of container on
    # both sides (so nothing under an added, removed or retyped value is repeated).
    rows = fetch_dicts(
        con,
        f"""SELECT p.scope, p.path, p.key, p.parent_path, p.is_property, p.is_keyword, p.in_array, p.parent_key,
                   p.schema_path,
                   CASE WHEN p.in_control THEN coalesce(p.control, json_extract(dc.doc, p.control_path)::VARCHAR)
                        END AS control,
                   CASE WHEN p.in_target THEN coalesce(p.target, json_extract(dt.doc, p.target_path)::VARCHAR)
                        END AS target,
                   CASE WHEN NOT p.in_target THEN 'removed' WHEN NOT p.in_control THEN 'added'
                        ELSE 'changed' END AS change
            FROM {pairs} p JOIN {pairs} up ON up.scope = p.scope AND up.match_path = p.parent_match
            LEFT JOIN {docs} dc ON dc.side = 'control' AND dc.scope = p.scope
            LEFT JOIN {docs} dt ON dt.side = 'target' AND dt.scope = p.scope
            WHERE up.walked AND p.match_path <> '$' AND NOT p.walked
              AND (NOT p.in_control OR NOT p.in_target OR p.control_shape <> p.target_shape
                   OR p.control_shape = 'container' OR p.control_cmp IS DISTINCT FROM p.target_cmp)
            ORDER BY p.scope, p.path""",
    )
    for side, count in con.execute(f"SELECT side, count(*) FROM {compared} WHERE is_property GROUP BY side").fetchall():
        result.properties[side] = result.properties.get(side, 0) + count
    for row in rows:
        row["control"], row["target"] = parse_json(row["control"]), parse_json(row["target"])
        result.changes.append(DocumentChange(**row))
    for table in (compared, pairs):
        scratch.drop(table)


def _match_options(scratch: Scratch, docs: str, nodes: str) -> str:
    """`match_path` / `parent_match` of the nodes of documents with named options; elsewhere
    they are the JSON path and the parent's.

    The match path is the path the two sides are paired on: the JSON path, except that a
    `oneOf`/`anyOf` option is named by its `const` properties (Airbyte's discriminator, e.g.
    `auth_type=oauth2.0`), else its title, so that an option added in front or options reordered
    do not pair unrelated options by index. An array whose options are not all named uniquely,
    on either side, keeps indices.
    """
    options = scratch.create(
        "doc_options",
        f"""SELECT n.side, n.scope, n.id, a.path AS array_path, json_extract(d.doc, n.path) AS opt
            FROM {nodes} n
            JOIN {nodes} a ON a.side = n.side AND a.scope = n.scope AND a.id = n.parent
            JOIN {docs} d ON d.side = n.side AND d.scope = n.scope
            WHERE a.key IN ('oneOf', 'anyOf') AND a.type = 'ARRAY'""",
    )
    segments = scratch.create(
        "doc_option_segments",
        f"""WITH consts AS (
                SELECT o.side, o.scope, o.id,
                       string_agg(e.key || '=' || (e.value ->> '$.const'), ',' ORDER BY e.key) AS name
                FROM {options} o, json_each(o.opt, '$.properties') e
                WHERE json_type(o.opt) = 'OBJECT' AND (e.value -> '$.const') IS NOT NULL
                GROUP BY ALL),
            named AS (
                SELECT o.side, o.scope, o.id, o.array_path, coalesce(c.name, o.opt ->> '$.title') AS name
                FROM {options} o LEFT JOIN consts c USING (side, scope, id)),
            unique_per_side AS (
                SELECT side, scope, array_path, count(name) = count(*) AND count(DISTINCT name) = count(*) AS ok
                FROM named GROUP BY ALL)
            SELECT n.side, n.scope, n.id, '[' || to_json(n.name)::VARCHAR || ']' AS seg
            FROM named n
            WHERE (n.scope, n.array_path) IN (
                SELECT (scope, array_path) FROM unique_per_side GROUP BY scope, array_path HAVING bool_and(ok))""",
    )
    scratch.drop(options)
    matched = scratch.create(
        "doc_matched",
        f"""WITH RECURSIVE m(side, scope, id, path, match_path, parent_match) AS (
                SELECT side, scope, id, path, path, path FROM {nodes}
                WHERE parent IS NULL AND scope IN (SELECT scope FROM {segments})
                UNION ALL
                SELECT n.side, n.scope, n.id, n.path,
                       m.match_path || coalesce(s.seg, substr(n.path, length(m.path) + 1)), m.match_path
                FROM m JOIN {nodes} n ON n.side = m.side AND n.scope = m.scope AND n.parent = m.id
                LEFT JOIN {segments} s ON s.side = n.side AND s.scope = n.scope AND s.id = n.id)
            SELECT side, scope, id, match_path, parent_match FROM m""",
    )
    scratch.drop(segments)
    return matched


def _required_names(changes: list[DocumentChange]) -> set[str]:
    names: set[str] = set()
    for change in changes:
        if change.key == "required" and change.is_keyword:
            for side in (change.control, change.target):
                if isinstance(side, list):
                    names.update(n for n in side if isinstance(n, str))
    return names


def _segments(con: duckdb.DuckDBPyConnection, names: set[str]) -> dict[str, str]:
    """Path segments of property names, written by DuckDB so they match json_tree's paths."""
    if not names:
        return {}
    rows = con.execute(
        f"SELECT k, seg FROM ({key_segments_sql('SELECT unnest($names::VARCHAR[]) AS k')})",
        {"names": sorted(names)},
    ).fetchall()
    return dict(rows)
