"""Secrets masking over a session folder: text files, .mitm dumps (still readable), and duck.db."""

from __future__ import annotations

import base64
import html
import json
import re
import urllib.parse
from pathlib import Path

import duckdb
import markupsafe
import pytest
from mitmproxy import http
from mitmproxy.io import FlowReader, FlowWriter
from mitmproxy.test import tflow

from live_tests import secrets
from live_tests.models import Command, ConnectorImage, ConnectorInputs, ExecutionInputs, ExecutionResult
from live_tests.secrets import MASK, SecretMasker, scrub_duckdb, scrub_file, scrub_session, secret_paths, secret_values
from live_tests.store.session_db import SessionDatabase

SECRET = 'pa$$/wörd "quoted"+42'

SPEC = {
    "type": "object",
    "properties": {
        "host": {"type": "string"},
        "api_key": {"type": "string", "airbyte_secret": True},
        "credentials": {
            "type": "object",
            "oneOf": [
                {"properties": {"auth_type": {"const": "oauth"}, "refresh_token": {"airbyte_secret": True}}},
                {"properties": {"auth_type": {"const": "basic"}, "password": {"airbyte_secret": True}}},
            ],
        },
        "replicas": {"type": "array", "items": {"type": "object", "properties": {"pw": {"airbyte_secret": True}}}},
    },
}  # fmt: skip


def test_secret_paths_follow_combinators_and_items() -> None:
    assert secret_paths(SPEC) == [
        ("api_key",),
        ("credentials", "refresh_token"),
        ("credentials", "password"),
        ("replicas", "pw"),
    ]


def test_secret_values_of_a_config() -> None:
    config = {
        "host": "db.example.com",
        "api_key": SECRET,
        "credentials": {"auth_type": "basic", "password": "hunter2-long"},
        "replicas": [{"pw": "replica-one"}, {"pw": 12345}],
    }
    assert secret_values(SPEC, config) == [SECRET, "hunter2-long", "replica-one", "12345"]
    # Without a spec: property names that look secret.
    assert secret_values(None, {"password": "abcd1234", "nested": {"client_secret": "xyz98765"}, "host": "h"}) == [
        "abcd1234",
        "xyz98765",
    ]


def test_masker_covers_encoded_forms_and_skips_short_values() -> None:
    masker = SecretMasker.of([SECRET, "abc", ""])
    assert masker.secrets == (SECRET,) and masker.skipped == ("abc",)
    encoded = [json.dumps(SECRET)[1:-1], json.dumps(SECRET, ensure_ascii=False)[1:-1]]
    encoded += [urllib.parse.quote(SECRET, safe=""), urllib.parse.quote_plus(SECRET)]
    for form in [SECRET, *encoded]:
        assert masker.mask_text(f"before {form} after") == f"before {MASK} after"
    assert not masker.contains_secret(masker.mask_text(" ".join(encoded)))


def test_scrub_file_streams_across_chunk_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "_CHUNK", 7)  # secrets straddle nearly every chunk boundary
    masker = SecretMasker.of([SECRET])
    lines = [f'{{"n": {i}, "token": {json.dumps(SECRET)}, "raw": "{SECRET if i % 2 else "-"}"}}' for i in range(50)]
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o640)
    assert scrub_file(path, masker)
    text = path.read_text(encoding="utf-8")
    assert not masker.contains_secret(text)
    rows = [json.loads(line) for line in text.splitlines()]  # still JSON
    assert [r["n"] for r in rows] == list(range(50))
    assert all(r["token"] == MASK for r in rows)
    assert [r["raw"] for r in rows[:2]] == ["-", MASK]
    assert path.stat().st_mode & 0o777 == 0o640
    mtime = path.stat().st_mtime_ns
    assert not scrub_file(path, masker)  # nothing left: the file is not rewritten
    assert path.stat().st_mtime_ns == mtime


def _flow_with_secret() -> http.HTTPFlow:
    flow = tflow.tflow(resp=True)
    flow.request.url = f"https://api.example.com/v1/items?key={urllib.parse.quote_plus(SECRET)}"
    flow.request.headers["Authorization"] = f"Bearer {SECRET}"
    flow.response.set_content(json.dumps({"echo": SECRET}).encode())
    return flow


def test_mitm_dump_stays_readable_after_same_length_masking(tmp_path: Path) -> None:
    path = tmp_path / "http_dump.mitm"
    with path.open("wb") as f:
        writer = FlowWriter(f)
        for _ in range(3):
            writer.add(_flow_with_secret())
    size = path.stat().st_size
    masker = SecretMasker.of([SECRET])
    report = scrub_session(tmp_path, masker)
    assert report.binary_dumps_masked == [path] and path.stat().st_size == size
    assert not any(form.encode() in path.read_bytes() for form in masker.needles)
    with path.open("rb") as f:
        flows = list(FlowReader(f).stream())
    assert len(flows) == 3
    stars = "*" * len(SECRET.encode())
    assert flows[0].request.headers["Authorization"] == f"Bearer {stars}"
    assert "*" in flows[0].request.query["key"]
    assert json.loads(flows[0].response.content)["echo"].strip("*") == ""


def _execution(tmp_path: Path, version: str, records: list[dict], logs: list[str]) -> ExecutionResult:
    connector = ConnectorImage("airbyte/source-x", version)
    artifacts = tmp_path / "artifacts" / version
    messages = artifacts / "airbyte_messages"
    messages.mkdir(parents=True)
    (messages / "records.jsonl").write_text(
        "".join(
            json.dumps({"type": "RECORD", "record": {"stream": "s", "data": r, "emitted_at": 1}}) + "\n"
            for r in records
        )
    )
    (messages / "logs.jsonl").write_text(
        "".join(json.dumps({"type": "LOG", "log": {"level": "INFO", "message": m}}) + "\n" for m in logs)
    )
    inputs = ExecutionInputs(connector, Command.READ, ConnectorInputs(), artifacts, "run")
    return ExecutionResult(inputs, exit_code=0, stderr_tail=f"auth failed for {SECRET}")


def test_duckdb_cells_masked_and_no_trace_left_in_the_file(tmp_path: Path) -> None:
    db_path = tmp_path / "duck.db"
    records = [{"id": i, "note": f"key={SECRET}" if i % 3 == 0 else "plain", "pad": "x" * 50} for i in range(3000)]
    with SessionDatabase(db_path) as db:
        db.load(_execution(tmp_path, "1.0", records, [f"connecting with {SECRET}", "done"]))
    masker = SecretMasker.of([SECRET])
    with duckdb.connect(str(db_path), read_only=True) as con:
        # In JSON text the secret's quotes are escaped: the value is found through the JSON.
        count = con.execute("SELECT count(*) FROM records WHERE data->>'note' = ?", [f"key={SECRET}"]).fetchone()
        assert count == (1000,)
    changed = scrub_duckdb(db_path, masker)
    assert changed == 1000 + 1 + 1  # records, one log, the stderr tail of the execution
    with duckdb.connect(str(db_path), read_only=True) as con:
        for table, column in [("records", "data"), ("logs", "message"), ("executions", "stderr_tail")]:
            assert con.execute(
                f"SELECT count(*) FROM {table} WHERE contains({column}::VARCHAR, ?)", [SECRET]
            ).fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM records WHERE data->>'note' = ?", [f"key={MASK}"]).fetchone() == (
            1000,
        )
        assert con.execute("SELECT typeof(data), count(*) FROM records GROUP BY ALL").fetchall() == [("JSON", 3000)]
    raw = db_path.read_bytes()
    assert not any(form.encode() in raw for form in masker.needles)
    assert not (tmp_path / "duck.db.wal").exists() and not (tmp_path / "duck.db.masked").exists()


def test_scrub_session_masks_every_file(tmp_path: Path) -> None:
    session = tmp_path / "session"
    files = {
        "report.html": f"<pre>{SECRET}</pre>",
        "report.json": json.dumps({"message": SECRET}),
        "a/b/stdout.log": f"token {SECRET}\n",
        "a/b/http_dump.har": json.dumps({"url": "https://x/?k=" + urllib.parse.quote(SECRET, safe="")}),
        "clean.txt": "nothing here",
    }
    for name, content in files.items():
        (session / name).parent.mkdir(parents=True, exist_ok=True)
        (session / name).write_text(content, encoding="utf-8")
    report = scrub_session(session, SecretMasker.of([SECRET]))
    assert sorted(p.relative_to(session).as_posix() for p in report.files_masked) == sorted(
        n for n in files if n != "clean.txt"
    )
    for name in files:
        text = (session / name).read_text(encoding="utf-8")
        assert SECRET not in text and urllib.parse.quote(SECRET, safe="") not in text
    assert json.loads((session / "report.json").read_text()) == {"message": MASK}
    assert scrub_session(session, SecretMasker()).files_scanned == 0  # nothing to mask: nothing read


HOSTILE = "h0st\"ile\\wörd/&<k>' 7f3a9c"


def _json_depth(text: str, depth: int, ascii_only: bool = True) -> str:
    for _ in range(depth):
        text = json.dumps(text, ensure_ascii=ascii_only)[1:-1]
    return text


def test_masker_covers_every_escaping_depth_html_base64_and_lowercase_percent() -> None:
    masker = SecretMasker.of([HOSTILE])
    quoted = urllib.parse.quote(HOSTILE, safe="")
    forms = [
        *(_json_depth(HOSTILE, depth, ascii_only) for depth in (1, 2, 3) for ascii_only in (True, False)),
        str(markupsafe.escape(HOSTILE)),  # report.html: &#34; &#39; &amp; &lt;
        html.escape(HOSTILE),  # &quot; &#x27;
        str(markupsafe.escape(_json_depth(HOSTILE, 1))),  # a JSON value shown in HTML
        quoted.lower(),
        re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), urllib.parse.quote_plus(HOSTILE)),
        base64.b64encode(HOSTILE.encode()).decode(),
        repr(HOSTILE)[1:-1],
        re.sub(r"[^A-Za-z0-9_.-]", "_", HOSTILE),  # a file named after a stream named after it
    ]
    for form in forms:
        masked = masker.mask_text(f"<{form}>")
        assert masked.startswith("<**********") and HOSTILE[-6:] not in masked, form
    # base64 of a longer value (HTTP Basic "user:secret"): the characters that depend on the secret alone.
    for prefix in ("", "u:", "user:"):
        basic = base64.b64encode((prefix + HOSTILE).encode()).decode()
        assert MASK in masker.mask_text(basic), prefix


def test_scrub_masks_latin1_headers_json_in_json_and_renames_files(tmp_path: Path) -> None:
    session = tmp_path / "session"
    stream_dir = session / "records_per_stream"
    stream_dir.mkdir(parents=True)
    state = json.dumps({"cursor": json.dumps({"request": json.dumps({"api_key": HOSTILE})})})
    (stream_dir / f"echo-{re.sub(r'[^A-Za-z0-9_.-]', '_', HOSTILE)}.jsonl").write_text(state + "\n")
    (session / f"dir {HOSTILE[:4]}").mkdir()  # too short a part: kept
    header = b"Authorization: Bearer " + HOSTILE.encode("latin-1") + b"\r\n"
    (session / "headers.bin").write_bytes(header)
    har = {"headers": [{"value": "Bearer " + HOSTILE.encode("latin-1").decode("utf-8", "surrogateescape")}]}
    (session / "http_dump.har").write_text(json.dumps(har))
    masker = SecretMasker.of([HOSTILE])
    scrub_session(session, masker)
    names = sorted(p.relative_to(session).as_posix() for p in session.rglob("*"))
    assert names == [
        f"dir {HOSTILE[:4]}", "headers.bin", "http_dump.har", "records_per_stream",
        "records_per_stream/echo-**********.jsonl",
    ]  # fmt: skip
    nested = json.loads((stream_dir / "echo-**********.jsonl").read_text())
    assert json.loads(json.loads(nested["cursor"])["request"]) == {"api_key": MASK}  # still JSON at every depth
    assert (session / "headers.bin").read_bytes() == b"Authorization: Bearer **********\r\n"
    assert json.loads((session / "http_dump.har").read_text()) == {"headers": [{"value": f"Bearer {MASK}"}]}


def test_duckdb_json_in_json_cells_masked_in_one_pass(tmp_path: Path) -> None:
    db_path = tmp_path / "duck.db"
    with duckdb.connect(str(db_path)) as con:
        con.execute("CREATE TABLE states (stream VARCHAR, state JSON, note VARCHAR)")
        nested = json.dumps({"cursor": json.dumps({"api_key": HOSTILE})})
        con.execute("INSERT INTO states VALUES (?, ?, ?)", [f"echo-{HOSTILE}", nested, "clean"])
        con.execute("INSERT INTO states VALUES ('plain', '{}', ?)", [str(markupsafe.escape(HOSTILE))])
    assert scrub_duckdb(db_path, SecretMasker.of([HOSTILE])) == 3  # cells: stream, state, the escaped note
    with duckdb.connect(str(db_path), read_only=True) as con:
        rows = con.execute("SELECT stream, state::VARCHAR, note FROM states ORDER BY stream").fetchall()
    assert rows[0][0] == f"echo-{MASK}" and json.loads(json.loads(rows[0][1])["cursor"]) == {"api_key": MASK}
    assert rows[1] == ("plain", "{}", MASK)


def test_debug_masking_choice() -> None:
    from live_tests.debug_secrets import choose_masking

    config = {"api_key": HOSTILE, "password": "named-like-a-secret"}
    spec = {"properties": {"api_key": {"type": "string", "airbyte_secret": True}}}
    unmarked = {"properties": {"api_key": {"type": "string"}}}
    assert choose_masking(None, config, [spec, None]).masker.secrets == (HOSTILE,)
    assert choose_masking(False, config, [spec]).summary(None) == (
        "Secrets: not masked (--no-mask-secrets: the artifacts keep the config's values)"
    )
    assert not choose_masking(None, config, [unmarked]).masker  # nothing marked, not asked: raw
    assert choose_masking(True, config, [unmarked]).masker.secrets == (HOSTILE, "named-like-a-secret")
    assert choose_masking(None, config, [None]).masker  # no spec readable: by property names
    assert choose_masking(None, None, []).summary(None) == "Secrets: not masked (no --config-path: no secret to mask)"
