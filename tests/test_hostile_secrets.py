"""A hostile connector that prints its secret everywhere, SIGTERM under plain pytest, two sessions in one folder.

The demo's `echo_secret` knob prints `api_key` in a stream name, records, a state, an error trace
(stack trace), logs and stderr: JSON inside JSON, base64, lowercase %xx. The secret holds `"`, `\\`,
`'`, `/`, `&`, `<` and non-ASCII. The leak scan below is written independently of
live_tests.secrets: every file name and every byte of every file of the folder (.mitm and duck.db
included) for each form, plus every text cell of duck.db.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

import docker
import duckdb
import markupsafe
import pytest
from mitmproxy.io import FlowReader

from live_tests.docker_engine import LABEL_EXECUTION, LABEL_RUN_ID, remove_leftovers
from tests.conftest import DEMO_DIR, REPO, leftovers, run_cli
from tests.test_regression_suite import demo_args, fake_api, run_suite  # noqa: F401 (fake_api: a fixture)

CATALOG = f"--catalog-path={DEMO_DIR / 'configured_catalog.json'}"


def hostile_secret() -> str:
    return f"h0st\"ile\\wörd/&<k>' {uuid.uuid4().hex[:10]}"


def secret_forms(secret: str) -> set[str]:
    """Raw; JSON-escaped 1-3 times (ASCII or not); HTML-escaped (Jinja and html.escape); %XX and %xx;
    base64; the first 8 characters (a shortened URL); as a file name."""
    forms = {secret}
    level = {secret}
    for _ in range(3):
        level = {json.dumps(text, ensure_ascii=ascii_only)[1:-1] for text in level for ascii_only in (True, False)}
        forms |= level
    for form in list(forms):
        forms |= {str(markupsafe.escape(form)), html.escape(form)}
    for quoted in (urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)):
        forms |= {quoted, re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quoted)}
    forms |= {base64.b64encode(secret.encode()).decode().rstrip("="), secret[:8]}
    forms.add(re.sub(r"[^A-Za-z0-9_.-]", "_", secret))
    # An HTTP header goes out in latin-1; mitmproxy's HAR writes such bytes as \\udcXX escapes.
    forms.add(json.dumps(secret.encode("latin-1").decode("utf-8", "surrogateescape"))[1:-1])
    return forms


def form_bytes(forms: set[str]) -> set[bytes]:
    """Each form in UTF-8 and latin-1."""
    found = set()
    for form in forms:
        for encoding in ("utf-8", "latin-1"):
            with contextlib.suppress(UnicodeEncodeError):
                found.add(form.encode(encoding))
    return found


def leaks(root: Path, secret: str) -> list[str]:
    """Where any form of the secret is left under root: names, bytes of every file, duck.db cells."""
    forms = secret_forms(secret)
    raw_forms = form_bytes(forms)
    found = []
    for path in sorted(root.rglob("*")):
        where = str(path.relative_to(root))
        found += [f"name {where}: {form!r}" for form in forms if form in path.name]
        if path.is_file():
            data = path.read_bytes()
            found += [f"bytes {where}: {form!r}" for form in raw_forms if form in data]
    for db in root.rglob("*.db"):
        with duckdb.connect(str(db), read_only=True) as con:
            columns = con.execute(
                "SELECT table_name, column_name FROM information_schema.columns WHERE data_type IN ('VARCHAR', 'JSON')"
            ).fetchall()
            for table, column in columns:
                for form in forms:
                    hits = con.execute(f'SELECT count(*) FROM "{table}" WHERE contains("{column}"::VARCHAR, ?)', [form])
                    if hits.fetchone() != (0,):
                        found.append(f"cell {db.name} {table}.{column}: {form!r}")
    return found


def hostile_config(tmp_path: Path, secret: str, **knobs: object) -> Path:
    config = json.loads((DEMO_DIR / "config.json").read_text()) | {"api_key": secret, "echo_secret": True, **knobs}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


@pytest.mark.docker
def test_hostile_connector_leaves_no_form_of_its_secret(
    fake_api: int,  # noqa: F811
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    secret = hostile_secret()
    config = hostile_config(tmp_path, secret, api_url="https://api.demo-shop.example/v1")
    run_id = f"hostile-{uuid.uuid4().hex[:6]}"
    run = run_suite(
        *demo_args("1.0.0", "2.0.0", f"--config-path={config}", CATALOG, "--stream=customers", "--no-noise-baseline"),
        rf"--proxy-option=map_remote=|https://api\.demo-shop\.example|http://host.docker.internal:{fake_api}",
        f"--run-id={run_id}",
        session_dir=tmp_path / "session",
    )
    session = run.session_dir
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]  # the echo stream is not configured
    # The secret was written in many places, and masked there.
    masked = re.search(
        r"Secrets: 1 config value\(s\) masked in (\d+) file\(s\), (\d+) .mitm .* (\d+) duck.db", run.stdout
    )
    assert masked and int(masked[1]) >= 10 and int(masked[2]) >= 1 and int(masked[3]) >= 5, run.stdout[-2000:]
    assert leaks(session, secret) == []
    assert not any(form in run.stdout + run.stderr for form in secret_forms(secret))

    read_dir = session / "command_execution_artifacts/source-demo/read/2.0.0"
    per_stream = sorted(p.name for p in (read_dir / "airbyte_messages/records_per_stream").iterdir())
    assert any(name.startswith("echo-**********") for name in per_stream), per_stream
    assert "echo-**********" in (session / "report.html").read_text()
    with duckdb.connect(str(session / "duck.db"), read_only=True) as con:
        assert con.execute("SELECT DISTINCT stream FROM records WHERE stream LIKE 'echo-%'").fetchall() == [
            ("echo-**********",)
        ]
        nested = con.execute("SELECT data->>'nested' FROM records WHERE stream LIKE 'echo-%' LIMIT 1").fetchone()
        assert nested is not None and json.loads(json.loads(nested[0])["request"]) == {"api_key": "**********"}
    # proxy.log keeps origins, not (shortened) URLs; the .mitm dump stays readable, the key masked in it.
    proxy_log = (read_dir / "proxy.log").read_text()
    assert "GET http://host.docker.internal" in proxy_log or "GET https://api.demo-shop.example" in proxy_log
    assert "/v1/" not in proxy_log and "customers" not in proxy_log
    with (read_dir / "http_dump.mitm").open("rb") as f:
        flows = list(FlowReader(f).stream())
    stars = "*" * len(secret.encode("latin-1"))  # the header went out in latin-1
    assert flows and {fl.request.headers["authorization"] for fl in flows} == {f"Bearer {stars}"}
    assert leftovers(docker_client, run_id) == []


def _wait_for_read(client: docker.DockerClient, run_id: str, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0][-3000:]
        # sparse: the list endpoint's labels, no inspect of containers that may be gone by then
        running = client.containers.list(sparse=True, filters={"label": f"{LABEL_RUN_ID}={run_id}"})
        if any("/read/" in (c.attrs.get("Labels") or {}).get(LABEL_EXECUTION, "") for c in running):
            return
        time.sleep(0.5)
    pytest.fail("the read never started")


@pytest.mark.docker
def test_sigterm_mid_read_and_a_second_session_in_the_same_folder(
    docker_client: docker.DockerClient, demo_images: tuple[str, str], tmp_path: Path
) -> None:
    """Plain `pytest regression_tests` killed with SIGTERM while the connectors hang mid-read."""
    secret = hostile_secret()
    config = hostile_config(tmp_path, secret, hang_seconds=300)
    run_id = f"sigterm-{uuid.uuid4().hex[:6]}"
    session = tmp_path / "session"
    command = [sys.executable, "-m", "pytest", "regression_tests", "-p", "no:cacheprovider", "-q"]
    command += demo_args("1.0.0", "2.0.0", f"--config-path={config}", CATALOG, "--no-noise-baseline")
    command += [f"--session-dir={session}", f"--run-id={run_id}"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for_read(docker_client, run_id, process, timeout_s=240)
        # A second session given the same folder is refused: one line naming it, nothing written.
        before = sorted(p.relative_to(session).as_posix() for p in session.rglob("*"))
        second = subprocess.run(
            [*command[:-1], f"--run-id={run_id}-b"], cwd=REPO, capture_output=True, text=True, timeout=120
        )
        assert second.returncode == 4, second.stdout[-2000:] + second.stderr[-2000:]
        assert (
            f"ERROR: session folder {session.resolve()} is in use by a live session (pid {process.pid}):"
            " pass another --session-dir or --run-id"
        ) in second.stderr
        assert [line for line in second.stderr.splitlines() if line.strip()] == [second.stderr.strip()]
        assert leftovers(docker_client, f"{run_id}-b") == []
        after = {p.relative_to(session).as_posix() for p in session.rglob("*")}
        assert after >= set(before) - {".live-tests.lock"}  # the first session's files untouched
        time.sleep(11)  # at least one heartbeat while the read hangs
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:  # a failed assertion above: still end the session cleanly
            process.send_signal(signal.SIGTERM)
            try:
                process.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                remove_leftovers(docker_client, run_id, force=True)
    assert time.monotonic() - started < 90  # not the 300 s hang
    assert process.returncode == 2, output[-3000:]  # pytest's "interrupted"
    report = json.loads((session / "report.json").read_text())
    assert (report["verdict"], report["interrupted"]) == ("interrupted", True)
    assert "Verdict: interrupted" in output
    # stdout is a pipe: a heartbeat every 10 s says which test runs and the executions it waits for
    # (the batch holding the read that hangs).
    heartbeat = (
        r"\[live-tests \d\d:\d\d:\d\d\] \d+s: running regression_tests/test_\w+\.py::test_\w+(\[[\w-]+\])?;"
        r" running \d+ executions \(read, [^)]*\), at most \d+ at a time; 0 of \d+ test\(s\) done"
    )
    assert re.search(heartbeat, output), output
    assert leaks(session, secret) == []
    assert not (session / ".live-tests.lock").exists()
    assert leftovers(docker_client, run_id) == []


@pytest.mark.docker
def test_debug_masks_secrets_by_default_and_keeps_them_with_no_mask_secrets(
    docker_client: docker.DockerClient, demo_images: tuple[str, str], tmp_path: Path
) -> None:
    secret = hostile_secret()
    config = hostile_config(tmp_path, secret)
    args = ["debug", "read", "-c", demo_images[0], f"--config-path={config}", CATALOG, "--disable-proxy"]
    masked = run_cli(*args, f"--output-dir={tmp_path / 'out'}", "--run-id=masked")
    assert masked.returncode == 0, masked.stdout[-2000:] + masked.stderr[-2000:]
    said = " ".join(masked.stderr.split())  # the summary lines go to stderr, the table to stdout
    assert "Secrets: masked (the spec marks them airbyte_secret; --no-mask-secrets keeps them): 1 config value" in said
    assert leaks(tmp_path / "out/masked", secret) == []
    records = tmp_path / "out/masked/source-demo/read/1.0.0/airbyte_messages/records.jsonl"
    assert '"stream":"echo-**********"' in records.read_text().replace(" ", "")

    raw = run_cli(*args, f"--output-dir={tmp_path / 'out'}", "--run-id=raw", "--no-mask-secrets")
    assert raw.returncode == 0, raw.stdout[-2000:] + raw.stderr[-2000:]
    assert "Secrets: not masked (--no-mask-secrets: the artifacts keep the config's values)" in raw.stderr
    kept = leaks(tmp_path / "out/raw", secret)
    assert any("records.jsonl" in leak for leak in kept) and any(leak.startswith("cell duck.db") for leak in kept)
    assert leftovers(docker_client, "masked") == [] and leftovers(docker_client, "raw") == []


@pytest.mark.docker
def test_pip_user_runs_the_installed_suite_from_a_wheel(demo_images: tuple[str, str], tmp_path: Path) -> None:
    """Wheel built, installed into a fresh venv, the suite run with `pytest --pyargs` away from the checkout."""
    wheels, venv, work = tmp_path / "wheels", tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "-w", str(wheels), "--no-deps", "-q"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    wheel = next(wheels.glob("live_tests-*.whl"))
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")} | {"COLUMNS": "200"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([python, *args], cwd=work, env=env, capture_output=True, text=True, timeout=600)

    where = run("-c", "import live_tests.regression_tests.plugin as p; print(p.__file__)")
    assert where.stdout.strip().startswith(str(venv)), where.stdout + where.stderr  # the wheel, not the checkout
    inputs = run("-m", "live_tests.cli", "demo-inputs", str(work / "demo"))
    assert inputs.returncode == 0, inputs.stderr
    assert sorted(p.name for p in (work / "demo").iterdir()) == [
        "config.json", "config_http.json", "configured_catalog.json", "state.json"
    ]  # fmt: skip

    helped = run("-m", "pytest", "--pyargs", "live_tests.regression_tests", "-h")
    assert helped.returncode == 0 and "--connector-image=CONNECTOR_IMAGE" in helped.stdout, helped.stderr[-2000:]
    suite = run(
        "-m", "pytest", "--pyargs", "live_tests.regression_tests", "-p", "no:cacheprovider", "-q", "-k", "spec",
        *demo_args("1.0.0", "2.0.0", f"--config-path={work / 'demo/config.json'}"),
        f"--session-dir={work / 'session'}",
    )  # fmt: skip
    assert suite.returncode == 0, suite.stdout[-3000:] + suite.stderr[-3000:]
    assert re.search(r"\b4 passed\b", suite.stdout), suite.stdout[-2000:]
    report = json.loads((work / "session/report.json").read_text())
    assert {t["name"] for t in report["tests"]} == {
        "test_spec_is_compatible", "test_spec_is_valid_json_schema_and_accepts_config", "test_secrets_are_marked",
        "test_performance_is_comparable[spec]",
    }  # fmt: skip

    # Loaded into every pytest run of the venv, the plugin does nothing there.
    (work / "test_other.py").write_text("def test_other():\n    assert True\n")
    other = run("-m", "pytest", "-p", "no:cacheprovider", "-q", "test_other.py")
    assert other.returncode == 0 and "1 passed" in other.stdout, other.stdout + other.stderr
    assert "live-tests" not in other.stdout
    assert "live_tests.regression_tests.plugin" in run("-m", "pytest", "--trace-config", "--co", "-q").stdout
