"""Benchmark the records comparison: SQL (DuckDB) vs a straightforward per-record Python diff.

    python bench/bench_compare.py [--records 1000000] [--sample 50000] [--memory-limit 512MB]

Generates control and target records of one stream (primary key `id`) straight into a duck.db
with SQL, in the layout of the `records` table. Target differs from control on ~5% of the keys:
1.5% removed, 1% `name` changed, 0.5% nested `address.city` changed, 0.5% with a new field,
1.5% new keys; another 1% are the same records with their keys in another order (must not count
as differences), and every `emitted_at` differs (never compared). Target is emitted in another
order than control.

Then times `compare_records` on it (DuckDB capped by --memory-limit, spilling to a temp
directory), checks it found exactly the planted differences, and times the Python baseline
(dict per key + DeepDiff per pair) on the first --sample keys, extrapolated linearly to all
records. Prints times, ratio and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
from deepdiff import DeepDiff

from live_tests.compare import compare_records
from live_tests.models import ExecutionKey
from live_tests.store.session_db import SessionDatabase

CONNECTOR = "source-bench"
CONTROL = ExecutionKey(CONNECTOR, "1.0.0", "read")
TARGET = ExecutionKey(CONNECTOR, "2.0.0", "read")
STREAM = "users"

# Planted differences, by id % 200 (each residue is 0.5% of the keys).
REMOVED = (0, 1, 2)
NAME_CHANGED = (3, 4)
CITY_CHANGED = (5,)
FIELD_ADDED = (6,)
REORDERED = (7, 8)
EXTRA_PER_200 = 3  # new keys in target: 1.5%


def _record_sql(variant: str) -> str:
    """JSON object of record i (SQL over column i); variant selects the target's modifications."""
    name = (
        "CASE WHEN i % 200 IN (3, 4) THEN 'USER_' || i ELSE 'user_' || i END" if variant == "target" else "'user_' || i"
    )
    city = (
        "CASE WHEN i % 200 = 5 THEN 'moved' ELSE 'city_' || (i % 500) END"
        if variant == "target"
        else "'city_' || (i % 500)"
    )
    fields = [
        ("id", "i"),
        ("name", name),
        ("email", "'user' || i || '@example.com'"),
        ("age", "i % 90"),
        ("score", "(i * 7 % 1000) / 10.0"),
        ("active", "i % 2 = 0"),
        ("address", f"json_object('city', {city}, 'zip', lpad((i % 99999)::VARCHAR, 5, '0'))"),
        ("tags", "json_array('t' || (i % 7), 't' || (i % 11))"),
        ("updated_at", "'2024-01-01T00:00:00Z'"),
    ]
    plain = "json_object(" + ", ".join(f"'{k}', {v}" for k, v in fields) + ")"
    if variant != "target":
        return plain
    added = "json_object(" + ", ".join(f"'{k}', {v}" for k, v in [*fields, ("nickname", "'nick' || i")]) + ")"
    reordered = "json_object(" + ", ".join(f"'{k}', {v}" for k, v in reversed(fields)) + ")"
    return f"CASE WHEN i % 200 = 6 THEN {added} WHEN i % 200 IN (7, 8) THEN {reordered} ELSE {plain} END"


def generate(db_path: Path, n: int, memory_limit: str, temp_dir: Path) -> float:
    SessionDatabase(db_path).close()  # the real schema
    started = time.perf_counter()
    con = _connect(db_path, memory_limit, temp_dir)
    con.execute(
        f"""INSERT INTO records
            SELECT '{CONNECTOR}', '1.0.0', 'read', i, '{STREAM}', NULL, 1700000000000 + i, {_record_sql("control")}
            FROM range(1, {n} + 1) r(i)"""
    )
    extra = n * EXTRA_PER_200 // 200
    con.execute(
        f"""INSERT INTO records
            SELECT '{CONNECTOR}', '2.0.0', 'read', row_number() OVER (ORDER BY hash(i)), '{STREAM}', NULL,
                   1800000000000 + i, {_record_sql("target")}
            FROM range(1, {n + extra} + 1) r(i)
            WHERE i > {n} OR i % 200 NOT IN {REMOVED}"""
    )
    con.close()
    return time.perf_counter() - started


def _connect(db_path: Path, memory_limit: str, temp_dir: Path) -> duckdb.DuckDBPyConnection:
    temp_dir.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(
        str(db_path),
        config={"memory_limit": memory_limit, "temp_directory": str(temp_dir), "preserve_insertion_order": False},
    )


def expected(n: int) -> dict[str, int]:
    """The planted differences, counted independently of the comparison code."""

    def per(residues: tuple[int, ...]) -> int:
        return sum(n // 200 if r == 0 else (n - r) // 200 + 1 for r in residues if r <= n)

    return {
        "missing": per(REMOVED),
        "extra": n * EXTRA_PER_200 // 200,
        "changed": per(NAME_CHANGED + CITY_CHANGED + FIELD_ADDED),
        "name": per(NAME_CHANGED),
        "city": per(CITY_CHANGED),
        "added": per(FIELD_ADDED),
    }


def sql_diff(db_path: Path, n: int, memory_limit: str, temp_dir: Path) -> tuple[float, dict[str, int]]:
    con = _connect(db_path, memory_limit, temp_dir)
    started = time.perf_counter()
    result = compare_records(con, CONTROL, TARGET, {STREAM: [["id"]]})
    elapsed = time.perf_counter() - started
    con.close()
    users = result.streams[STREAM]
    fields = {(f.path, f.change): f.records for f in users.field_diffs}
    found = {
        "missing": users.missing_in_target,
        "extra": users.extra_in_target,
        "changed": users.changed,
        "name": fields.get(("$.name", "changed"), 0),
        "city": fields.get(("$.address.city", "changed"), 0),
        "added": fields.get(("$.nickname", "added"), 0),
    }
    return elapsed, found


def python_diff(db_path: Path, sample: int) -> tuple[float, float, dict[str, int]]:
    """The straightforward approach on keys 1..sample: JSON text -> dict per key -> DeepDiff per pair."""
    con = duckdb.connect(str(db_path), read_only=True)
    started = time.perf_counter()
    rows = {
        side: con.execute(
            "SELECT data::VARCHAR FROM records WHERE version = ? AND (data ->> '$.id')::BIGINT <= ?",
            [version, sample],
        ).fetchall()
        for side, version in (("control", CONTROL[1]), ("target", TARGET[1]))
    }
    con.close()
    fetch_s = time.perf_counter() - started

    started = time.perf_counter()
    control = {}
    for (text,) in rows["control"]:
        record = json.loads(text)
        control[record["id"]] = record
    target = {}
    for (text,) in rows["target"]:
        record = json.loads(text)
        target[record["id"]] = record
    missing = control.keys() - target.keys()
    extra = target.keys() - control.keys()
    changed = 0
    for key in control.keys() & target.keys():
        if DeepDiff(control[key], target[key]):
            changed += 1
    diff_s = time.perf_counter() - started
    return fetch_s, diff_s, {"missing": len(missing), "extra": len(extra), "changed": changed}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_phase(phase: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one phase in a fresh interpreter, so each phase's peak RSS is its own."""
    command = [sys.executable, __file__, "--phase", phase, "--records", str(args.records), "--sample",
               str(args.sample), "--memory-limit", args.memory_limit, "--workdir", str(args.workdir)]  # fmt: skip
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def phase_main(args: argparse.Namespace) -> dict[str, Any]:
    n, sample = args.records, min(args.sample, args.records)
    db_path, temp_dir = args.workdir / "duck.db", args.workdir / "duckdb_tmp"
    if args.phase == "generate":
        out: dict[str, Any] = {"seconds": generate(db_path, n, args.memory_limit, temp_dir)}
    elif args.phase == "sql":
        seconds, found = sql_diff(db_path, n, args.memory_limit, temp_dir)
        out = {"seconds": seconds, "found": found}
    else:
        fetch_s, seconds, found = python_diff(db_path, sample)
        out = {"seconds": seconds, "fetch_seconds": fetch_s, "found": found}
    return {**out, "peak_rss_mb": peak_rss_mb()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="control records (default 1,000,000)")
    parser.add_argument("--sample", type=int, default=50_000, help="keys diffed by the Python baseline")
    parser.add_argument("--memory-limit", default="512MB", help="DuckDB memory_limit (default 512MB)")
    parser.add_argument("--workdir", type=Path, default=Path(__file__).parent / ".work" / "bench_compare")
    parser.add_argument("--keep", action="store_true", help="keep the generated duck.db")
    parser.add_argument("--phase", choices=("generate", "sql", "python"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase_main(args)))
        return 0
    n, sample = args.records, min(args.sample, args.records)
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    try:
        gen = run_phase("generate", args)
        extra = n * EXTRA_PER_200 // 200
        print(f"Generated {n:,} control + {n - expected(n)['missing'] + extra:,} target records with SQL"
              f" in {gen['seconds']:.1f}s")  # fmt: skip
        sql = run_phase("sql", args)
        want = expected(n)
        ok = sql["found"] == want
        print(f"SQL diff (compare_records, DuckDB memory_limit={args.memory_limit}, spilling to disk):"
              f" {sql['seconds']:.2f}s, peak RSS {sql['peak_rss_mb']:.0f} MB")  # fmt: skip
        print(f"  found   {sql['found']}")
        print(f"  planted {want} -> {'exact match' if ok else 'MISMATCH'}")
        py = run_phase("python", args)
        projected = py["seconds"] * n / sample
        print(f"Python baseline (json.loads -> dict per key -> DeepDiff per pair) on the first {sample:,} keys:"
              f" {py['seconds']:.2f}s, peak RSS {py['peak_rss_mb']:.0f} MB")  # fmt: skip
        print(f"  found {py['found']} (+{py['fetch_seconds']:.2f}s to fetch the sample's JSON text, not counted)")
        print(f"  extrapolated linearly to {n:,} records: {projected:.0f}s")
        print(f"Ratio: the SQL diff is {projected / sql['seconds']:.0f}x faster than the extrapolated baseline")
    finally:
        if not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
