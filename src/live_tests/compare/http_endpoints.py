"""HTTP requests of a control and a target execution, grouped by endpoint, in DuckDB.

An endpoint is method + host + path template. The template folds the variable segments of a path:

- always, whatever their number: digits (`/pokemon/25`), UUIDs, hex strings of 16+ characters and
  tokens of 16+ `[A-Za-z0-9_=-]` characters mixing letters and digits become `{id}`; ISO dates
  (`2024-01-31`, with or without a time) become `{date}`;
- by position: other segments (names, slugs) become `{name}` where, among the requests of both
  executions with the same method, host and (folded) preceding segments, more than
  FOLD_MIN_DISTINCT distinct values appear at that position and they are at least half as many as
  the distinct URLs going through it. A connector that fetches one resource per key
  (`/pokemon/bulbasaur`, `/pokemon/ivysaur`, ...) hits that; a handful of collections
  (`/v1/users`, `/v1/orders`), each paged, does not and keeps one endpoint per collection.

Positions are decided over both executions together, so both get the same templates.

Per endpoint and side: requests, statuses, bytes, query parameters (names, and their values when
at most FEW_VALUES distinct; a value that is a timestamp of the execution's own run, from an hour
before it started to a minute after it ended, counts as `{now}`, e.g. `end_date=<now>`), repeats
(requests of a URL already requested: retries, or the same call made twice) and pagination (runs
of requests differing only in page-position parameters).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

from live_tests.compare.http_traffic import HTTP_FLOWS_TABLE
from live_tests.compare.volatility import _ISO_EPOCH as ISO_EPOCH_SQL
from live_tests.models import ExecutionKey
from live_tests.sql import Scratch, both_params, key_filter, literal, table_exists

ID, DATE, NAME, NOW = "{id}", "{date}", "{name}", "{now}"
# How far outside an execution's wall-clock window a query value still counts as "now": connectors
# often round it down (to the minute, the hour).
NOW_BEFORE_S, NOW_AFTER_S = 3600, 60
FOLD_MIN_DISTINCT = 20
FEW_VALUES = 5
# Query parameters that say which page a request asks for (lower-cased names). Page *size*
# parameters (limit, per_page, page_size) are not among them: their values are compared.
PAGE_PARAM_REGEX = (
    r"page|page_?num(ber)?|page\[(number|offset|after|before|cursor)\]|offset|skip|start(_?index|_?at)?|"
    r"cursor|next(_?(page|token|cursor))?|page_?token|continuation(_?token)?|marker|after|before|"
    r"starting_after|ending_before|since|since_id|max_id"
)


def is_page_param(name: str) -> bool:
    """Whether a query parameter says which page a request asks for."""
    return re.fullmatch(PAGE_PARAM_REGEX, name.lower()) is not None


_ALWAYS_FOLD_SQL = f"""CASE
    WHEN regexp_full_match(s, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}([T ][0-9:.]+(Z|[+-][0-9:]+)?)?') THEN {literal(DATE)}
    WHEN regexp_full_match(s, '[0-9]+')
      OR regexp_full_match(s, '[0-9a-fA-F]{{8}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{12}}')
      OR regexp_full_match(s, '[0-9a-fA-F]{{16,}}')
      OR (regexp_full_match(s, '[A-Za-z0-9_=-]{{16,}}')
          AND regexp_matches(s, '[0-9]') AND regexp_matches(s, '[A-Za-z]'))
      THEN {literal(ID)}
    ELSE s END"""
_PLACEHOLDER_REGEX = r"\{[a-z]+\}"
EXECUTIONS_TABLE = "executions"


def _decoded(text: str) -> str:
    """Form-decoded query text; left as is when it does not decode to UTF-8."""
    return f"coalesce(try(url_decode(replace({text}, '+', ' '))), {text})"


def _pairs_sql(params: str, page: bool) -> str:
    """The page-position (or the other) parameters of a request as one sorted `a=1&b=2` text."""
    test = f"regexp_full_match(lower(p.name), {literal(PAGE_PARAM_REGEX)})"
    return f"""array_to_string(list_sort(list_transform(
        list_filter({params}, lambda p: {"" if page else "NOT "}{test}), lambda p: p.name || '=' || p.value)), '&')"""


# A query value stamped with "now": inside [lo, hi] (epoch seconds of the execution's window), as
# ISO-8601 text or epoch seconds or milliseconds.
_NOW_STAMP_SQL = f"""coalesce(({ISO_EPOCH_SQL.format(s="p.value")}) BETWEEN lo AND hi
    OR (regexp_full_match(p.value, '[0-9]{{10}}([.][0-9]+)?') AND try_cast(p.value AS DOUBLE) BETWEEN lo AND hi)
    OR (regexp_full_match(p.value, '[0-9]{{13}}') AND try_cast(p.value AS DOUBLE) BETWEEN lo * 1000 AND hi * 1000),
    FALSE)"""
_PARAMS_SQL = f"""list_transform(list_transform(
        list_filter(string_split(coalesce(query, ''), '&'), lambda p: p <> ''),
        lambda p: {{'name': {_decoded("split_part(p, '=', 1)")},
                   'value': CASE WHEN strpos(p, '=') > 0 THEN {_decoded("substr(p, strpos(p, '=') + 1)")}
                            ELSE '' END}}),
    lambda p: {{'name': p.name, 'value': CASE WHEN {_NOW_STAMP_SQL} THEN {literal(NOW)} ELSE p.value END}})"""


@dataclass(frozen=True)
class QueryParameter:
    """One query parameter's values at one endpoint on one side."""

    distinct: int
    values: list[str] | None  # sorted, when at most FEW_VALUES distinct

    def describe(self) -> str:
        if self.values is None:
            return f"{self.distinct} values"
        return ", ".join(v or '""' for v in self.values)


@dataclass(frozen=True)
class EndpointCalls:
    """What one execution asked of one endpoint."""

    requests: int
    statuses: dict[str, int]  # "200" -> count; "none" for requests without a response
    request_bytes: int
    response_bytes: int
    params: dict[str, QueryParameter] = field(default_factory=dict)
    repeats: int = 0  # requests of a method + URL already requested (retries, or the same call twice)
    paged_runs: int = 0  # runs of 2+ requests differing only in page-position parameters
    pages: int = 0  # requests in those runs
    max_pages: int = 1

    @property
    def error_statuses(self) -> dict[str, int]:
        """Statuses >= 400, and "none" (no response)."""
        return {s: n for s, n in self.statuses.items() if not s.isdigit() or int(s) >= 400}


@dataclass(frozen=True)
class HttpEndpoint:
    """One endpoint, both sides (None: the side never requested it)."""

    method: str
    host: str
    path: str  # the template, e.g. /pokemon/{id}
    control: EndpointCalls | None
    target: EndpointCalls | None

    @property
    def name(self) -> str:
        return f"{self.method} {self.host}{self.path}"

    def to_dict(self) -> dict[str, Any]:
        return {"endpoint": self.name, **asdict(self)}


def http_endpoints(con: duckdb.DuckDBPyConnection, control: ExecutionKey, target: ExecutionKey) -> list[HttpEndpoint]:
    """The endpoints either execution requested, sorted by name, with both sides' calls."""
    window = (
        f"""SELECT epoch(started_at) - {NOW_BEFORE_S} AS lo, epoch(finished_at) + {NOW_AFTER_S} AS hi
            FROM {EXECUTIONS_TABLE} WHERE {{key}} LIMIT 1"""
        if table_exists(con, EXECUTIONS_TABLE)
        else "SELECT NULL::DOUBLE AS lo, NULL::DOUBLE AS hi"
    )
    both = " UNION ALL ".join(
        f"""SELECT '{side}' AS side, upper(method) AS method, lower(host) AS host,
                   coalesce(nullif(path, ''), '/') AS raw_path, url, status, request_size, response_size,
                   {_PARAMS_SQL} AS params
            FROM {HTTP_FLOWS_TABLE} f LEFT JOIN ({window.format(key=key_filter(side))}) w ON TRUE
            WHERE {key_filter(side, "f")}"""
        for side in ("c", "t")
    )
    with Scratch(con) as scratch:
        flows = scratch.create(
            "flows",
            f"""SELECT *, {_pairs_sql("params", page=False)} AS page_key, {_pairs_sql("params", page=True)} AS page_pos
                FROM ({both})""",
            both_params(control, target),
        )
        # Folding works on the distinct paths, far fewer than the requests when pages or retries repeat them.
        paths = scratch.create(
            "paths",
            f"""SELECT method, host, raw_path, count(DISTINCT url) AS urls,
                       list_transform(string_split(raw_path, '/'), lambda s: {_ALWAYS_FOLD_SQL}) AS segs
                FROM {flows} GROUP BY method, host, raw_path""",
        )
        _fold_variable_positions(con, paths)
        calls = scratch.create(
            "calls",
            f"""SELECT f.*, array_to_string(p.segs, '/') AS template
                FROM {flows} f JOIN {paths} p USING (method, host, raw_path)""",
        )
        return _endpoints(con, calls)


def _fold_variable_positions(con: duckdb.DuckDBPyConnection, paths: str) -> None:
    """Fold, position by position from the left, the segments that vary across many requests."""
    depth = con.execute(f"SELECT coalesce(max(len(segs)), 0) FROM {paths}").fetchone()
    for i in range(2, int(depth[0] if depth else 0) + 1):  # segment 1 is the empty one before the leading /
        con.execute(
            f"""UPDATE {paths}
                SET segs = list_concat({paths}.segs[1:{i - 1}], [{literal(NAME)}], {paths}.segs[{i + 1}:])
                FROM (SELECT method, host, segs[1:{i - 1}] AS prefix FROM {paths} WHERE len(segs) >= {i}
                      GROUP BY ALL
                      HAVING count(DISTINCT segs[{i}]) > {FOLD_MIN_DISTINCT}
                         AND 2 * count(DISTINCT segs[{i}]) >= sum(urls)) variable
                WHERE {paths}.method = variable.method AND {paths}.host = variable.host
                  AND len({paths}.segs) >= {i} AND {paths}.segs[1:{i - 1}] = variable.prefix
                  AND NOT regexp_full_match({paths}.segs[{i}], {literal(_PLACEHOLDER_REGEX)})"""
        )


_ENDPOINT = "side, method, host, template"


def _endpoints(con: duckdb.DuckDBPyConnection, calls: str) -> list[HttpEndpoint]:
    statuses: dict[tuple[str, ...], dict[str, int]] = {}
    for *key, status, n in con.execute(
        f"SELECT {_ENDPOINT}, coalesce(status::VARCHAR, 'none') AS s, count(*) FROM {calls} GROUP BY ALL ORDER BY ALL"
    ).fetchall():
        statuses.setdefault(tuple(key), {})[status] = int(n)
    params: dict[tuple[str, ...], dict[str, QueryParameter]] = {}
    for *key, name, distinct, values in con.execute(
        f"""SELECT {_ENDPOINT}, p.name, count(DISTINCT p.value),
                   CASE WHEN count(DISTINCT p.value) <= {FEW_VALUES} THEN list_sort(list(DISTINCT p.value)) END
            FROM (SELECT {_ENDPOINT}, unnest(params) AS p FROM {calls}) GROUP BY ALL ORDER BY ALL"""
    ).fetchall():
        params.setdefault(tuple(key), {})[name] = QueryParameter(int(distinct), list(values) if values else None)
    sides: dict[tuple[str, str, str], dict[str, EndpointCalls]] = {}
    for side, method, host, template, requests, req_bytes, resp_bytes, repeats, runs, pages, max_pages in con.execute(
        f"""WITH runs AS (
                SELECT {_ENDPOINT}, count(DISTINCT page_pos) AS pages FROM {calls}
                GROUP BY {_ENDPOINT}, raw_path, page_key),
            paging AS (
                SELECT {_ENDPOINT}, count(*) FILTER (WHERE pages > 1) AS runs,
                       coalesce(sum(pages) FILTER (WHERE pages > 1), 0) AS pages, max(pages) AS max_pages
                FROM runs GROUP BY ALL)
            SELECT c.side, c.method, c.host, c.template, count(*), coalesce(sum(request_size), 0),
                   coalesce(sum(response_size), 0), count(*) - count(DISTINCT url),
                   any_value(p.runs), any_value(p.pages), any_value(p.max_pages)
            FROM {calls} c JOIN paging p USING ({_ENDPOINT}) GROUP BY ALL ORDER BY ALL"""
    ).fetchall():
        key = (side, method, host, template)
        sides.setdefault((method, host, template), {})[side] = EndpointCalls(
            requests=int(requests),
            statuses=statuses.get(key, {}),
            request_bytes=int(req_bytes),
            response_bytes=int(resp_bytes),
            params=params.get(key, {}),
            repeats=int(repeats),
            paged_runs=int(runs),
            pages=int(pages),
            max_pages=int(max_pages),
        )
    return [
        HttpEndpoint(method, host, template, by_side.get("c"), by_side.get("t"))
        for (method, host, template), by_side in sorted(sides.items())
    ]
