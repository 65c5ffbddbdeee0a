"""Flatten JSON schemas into one row per property, in SQL (shared by the spec and catalog diffs).

Input: a relation with columns `side` ('control'/'target'), `scope` (e.g. a stream name) and
`schema` (JSON). A property is any object under a `properties` object, at any depth (including
inside `oneOf`/`anyOf`/`items`), identified by its JSON path in the schema, e.g.
`$.properties.credentials.oneOf[0].properties.api_key`; `display` is the same path without the
`properties` hops (`credentials.oneOf[0].api_key`).
"""

from __future__ import annotations

from live_tests.sql import canonical_sql

# Attributes compared separately (type, required, secret) or through nested properties.
STRUCTURAL_ATTRIBUTES = ("properties", "items", "oneOf", "anyOf", "allOf", "type", "required", "airbyte_secret")
# Attribute changes that never affect what a connector accepts or emits.
COSMETIC_ATTRIBUTES = (
    "title", "description", "order", "examples", "airbyte_hidden", "group", "display_type",
    "always_show", "x-speakeasy-param-sensitive",
)  # fmt: skip


def nodes_sql(source: str) -> str:
    """Every node of every schema, with its parent's id (json_tree ids are per document)."""
    return f"""
        SELECT d.side, d.scope, j.id, j.parent, j.key, j.fullkey, j.type, j.value
        FROM {source} d, json_tree(d.schema) j"""


def properties_sql(nodes: str) -> str:
    """One row per property: types (sorted; [] when untyped), secret flag, required flag, value.

    `nodes` is a table made from `nodes_sql`.
    """
    display = r"regexp_replace(regexp_replace(p.fullkey, '\.properties\.', '.', 'g'), '^\$\.(properties\.)?', '')"
    return f"""
        SELECT p.side, p.scope, p.fullkey AS path, {display} AS display, p.key AS name,
               CASE json_type(p.value, '$.type')
                    WHEN 'ARRAY' THEN list_sort(json_extract_string(p.value, '$.type[*]'))
                    WHEN 'VARCHAR' THEN [p.value ->> '$.type']
                    ELSE []::VARCHAR[] END AS types,
               coalesce(json_extract_string(p.value, '$.airbyte_secret') = 'true', FALSE) AS secret,
               list_contains(coalesce(json_extract_string(s.value, '$.required[*]'), []), p.key) AS required,
               p.value
        FROM {nodes} p
        JOIN {nodes} props ON props.side = p.side AND props.scope = p.scope AND props.id = p.parent
        JOIN {nodes} s ON s.side = props.side AND s.scope = props.scope AND s.id = props.parent
        WHERE props.key = 'properties' AND props.type = 'OBJECT' AND p.type = 'OBJECT'
              AND s.type = 'OBJECT'"""


def attributes_sql(properties: str) -> str:
    """One row per (property, attribute) for the non-structural attributes, values canonicalised.

    `properties` is a table made from `properties_sql`.
    """
    excluded = ", ".join(f"'{a}'" for a in STRUCTURAL_ATTRIBUTES)
    source = f"""(SELECT p.side, p.scope, p.path, a.key AS attr, a.value AS attr_value
                  FROM {properties} p, json_each(p.value) a WHERE a.key NOT IN ({excluded}))"""
    canon = canonical_sql(source, "side, scope, path, attr", "attr_value")
    return f"""
        SELECT src.side, src.scope, src.path, src.attr, src.attr_value::VARCHAR AS raw, c.canon
        FROM {source} src JOIN ({canon}) c USING (side, scope, path, attr)"""


def type_narrowed_sql(control_types: str, target_types: str) -> str:
    """SQL condition: the target accepts fewer JSON types than the control (an input got stricter).

    Untyped ([]) accepts everything; `number` also accepts integers.
    """
    expanded = (
        f"list_concat({target_types}, CASE WHEN list_contains({target_types}, 'number')"
        " THEN ['integer'] ELSE []::VARCHAR[] END)"
    )
    return f"(len({target_types}) > 0 AND (len({control_types}) = 0 OR NOT list_has_all({expanded}, {control_types})))"


def property_pairs_sql(properties: str) -> str:
    """Control and target properties side by side (FULL OUTER JOIN on scope and path), differing only."""
    return f"""
        SELECT coalesce(c.scope, t.scope) AS scope, coalesce(c.path, t.path) AS path,
               coalesce(c.display, t.display) AS display,
               c.path IS NOT NULL AS in_control, t.path IS NOT NULL AS in_target,
               c.types AS control_types, t.types AS target_types,
               c.required AS control_required, t.required AS target_required,
               c.secret AS control_secret, t.secret AS target_secret,
               {type_narrowed_sql("c.types", "t.types")} AS narrowed,
               list_filter(c.types, lambda x: x <> 'null') = list_filter(t.types, lambda x: x <> 'null')
                   AS same_non_null_types
        FROM (SELECT * FROM {properties} WHERE side = 'control') c
        FULL OUTER JOIN (SELECT * FROM {properties} WHERE side = 'target') t
            ON c.scope = t.scope AND c.path = t.path
        WHERE c.path IS NULL OR t.path IS NULL OR c.types <> t.types
              OR c.required <> t.required OR c.secret <> t.secret
        ORDER BY scope, path"""


def attribute_pairs_sql(attributes: str, properties: str) -> str:
    """Attributes that differ on properties present on both sides, with enum values removed."""
    return f"""
        WITH both_sides AS (
            SELECT scope, path FROM {properties} WHERE side = 'control'
            INTERSECT SELECT scope, path FROM {properties} WHERE side = 'target'
        )
        SELECT coalesce(c.scope, t.scope) AS scope, coalesce(c.path, t.path) AS path,
               coalesce(c.attr, t.attr) AS attr, c.raw AS control_value, t.raw AS target_value,
               CASE WHEN coalesce(c.attr, t.attr) = 'enum' AND c.raw IS NOT NULL THEN
                   list_filter(json_extract_string(c.raw, '$[*]'),
                               lambda v: NOT list_contains(coalesce(json_extract_string(t.raw, '$[*]'), []), v))
               END AS enum_removed
        FROM (SELECT * FROM {attributes} WHERE side = 'control') c
        FULL OUTER JOIN (SELECT * FROM {attributes} WHERE side = 'target') t
            ON c.scope = t.scope AND c.path = t.path AND c.attr = t.attr
        SEMI JOIN both_sides b ON b.scope = coalesce(c.scope, t.scope) AND b.path = coalesce(c.path, t.path)
        WHERE c.canon IS DISTINCT FROM t.canon
        ORDER BY scope, path, attr"""
