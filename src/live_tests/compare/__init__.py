"""Control-vs-target comparisons over the session's duck.db, all set-based SQL in DuckDB.

Each `compare_*` function takes a DuckDB connection and the (connector, version, command) keys of
the control and target executions, and returns a `Comparison` subclass: `passed`, `summary`
lines, structured `findings`, and `write_diff_files(directory)`. `compare_records`, `compare_states`,
`compare_inferred_schemas` and `compare_traces` take `ignored=[IgnoredPath, ...]` (the user's
`--ignore-field` and the volatile paths `find_volatile_paths` finds from a second control run) and
list the ones they applied in `result.ignored`. `compare_http_calls` diffs the HTTP requests by
endpoint (method, host, path template). `compare_performance` compares the executions' cost (wall time,
time to first record, records/s, memory, CPU, HTTP calls per record) beyond a tolerance.
"""

from live_tests.compare.catalog import CatalogComparison, compare_catalogs
from live_tests.compare.counts import catalog_streams, message_counts, records_per_stream
from live_tests.compare.diff import Comparison, ExecutionKey, Finding, Severity
from live_tests.compare.http_calls import HttpCallsComparison, compare_http_calls
from live_tests.compare.http_endpoints import EndpointCalls, HttpEndpoint, QueryParameter
from live_tests.compare.http_traffic import CaptureStatus, HttpTraffic, capture_status, http_traffic
from live_tests.compare.ignores import IgnoredPath
from live_tests.compare.invalid_lines import InvalidLinesComparison, compare_invalid_lines
from live_tests.compare.performance import (
    ExecutionFigures,
    PerformanceComparison,
    PerformanceFloors,
    compare_performance,
    execution_figures,
)
from live_tests.compare.records import (
    FieldDiffCount,
    PrimaryKeys,
    RecordsComparison,
    StreamRecordsDiff,
    compare_records,
)
from live_tests.compare.schemas import FieldProfile, InferredSchemaComparison, compare_inferred_schemas, infer_schemas
from live_tests.compare.spec import SpecComparison, compare_spec
from live_tests.compare.states import StatesComparison, StreamState, compare_states
from live_tests.compare.traces import TraceError, TracesComparison, compare_traces
from live_tests.compare.volatility import find_volatile_paths

__all__ = [
    "CaptureStatus",
    "CatalogComparison",
    "Comparison",
    "EndpointCalls",
    "ExecutionFigures",
    "ExecutionKey",
    "FieldDiffCount",
    "FieldProfile",
    "Finding",
    "HttpCallsComparison",
    "HttpEndpoint",
    "HttpTraffic",
    "IgnoredPath",
    "InferredSchemaComparison",
    "InvalidLinesComparison",
    "PerformanceComparison",
    "PerformanceFloors",
    "PrimaryKeys",
    "QueryParameter",
    "RecordsComparison",
    "Severity",
    "SpecComparison",
    "StatesComparison",
    "StreamRecordsDiff",
    "StreamState",
    "TraceError",
    "TracesComparison",
    "capture_status",
    "catalog_streams",
    "compare_catalogs",
    "compare_http_calls",
    "compare_inferred_schemas",
    "compare_invalid_lines",
    "compare_performance",
    "compare_records",
    "compare_spec",
    "compare_states",
    "compare_traces",
    "execution_figures",
    "find_volatile_paths",
    "http_traffic",
    "infer_schemas",
    "message_counts",
    "records_per_stream",
]
