"""Runner + store throughput and memory: `live-tests debug read` against a raw `docker run`.

    python bench/bench_runner.py [--records 1000000] [--memory-sizes 100000,1000000,5000000]

Builds `live-tests/bench-source` (prints N records as fast as it can) FROM the base image setting,
then, in one run, times `docker run IMAGE read ... > /dev/null` and `live-tests debug read` of the
same image for the same N, and measures the harness's peak RSS for several N.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker

from live_tests.images import ensure_base_image

IMAGE = "live-tests/bench-source:latest"
HERE = Path(__file__).resolve().parent


def build_image(client: docker.DockerClient) -> None:
    base = ensure_base_image(client)
    client.images.build(path=str(HERE / "synthetic_connector"), tag=IMAGE, buildargs={"BASE_IMAGE": base}, rm=True)


def write_inputs(workdir: Path, records: int) -> tuple[Path, Path]:
    config, catalog = workdir / "config.json", workdir / "catalog.json"
    config.write_text(json.dumps({"records": records}))
    stream = {"name": "bench", "json_schema": {}, "supported_sync_modes": ["full_refresh"]}
    catalog.write_text(
        json.dumps({"streams": [{"stream": stream, "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}]})
    )
    return config, catalog


def timed(command: list[str]) -> tuple[float, int]:
    """Wall time and peak RSS (bytes) of a command, its own process only."""
    started = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        process = subprocess.Popen(command, stdout=devnull, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"command failed: {' '.join(command)}\n{process.stderr.read().decode()[-2000:]}")
    return elapsed, usage.ru_maxrss * 1024


def raw_docker_run(workdir: Path) -> list[str]:
    return [
        "docker", "run", "--rm", "-v", f"{workdir}:/inputs:ro", IMAGE,
        "read", "--config", "/inputs/config.json", "--catalog", "/inputs/catalog.json",
    ]  # fmt: skip


def live_tests_read(workdir: Path, config: Path, catalog: Path, run_id: str) -> list[str]:
    return [
        sys.executable, "-m", "live_tests.cli", "debug", "read", "-c", IMAGE,
        "--config-path", str(config), "--catalog-path", str(catalog),
        "--output-dir", str(workdir / "out"), "--run-id", run_id,
        # The runner and the store are measured here; the proxy has nothing to capture from this source.
        "--disable-proxy",
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--memory-sizes", default="100000,1000000,5000000")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each side; the best is kept")
    args = parser.parse_args()

    client = docker.from_env()
    build_image(client)
    with tempfile.TemporaryDirectory(prefix="live-tests-bench-") as tmp:
        workdir = Path(tmp)
        config, catalog = write_inputs(workdir, args.records)
        raw = min(timed(raw_docker_run(workdir))[0] for _ in range(args.repeat))
        ours = min(timed(live_tests_read(workdir, config, catalog, f"speed{i}"))[0] for i in range(args.repeat))
        stdout_log = workdir / "out" / "speed0" / "bench-source" / "read" / "latest" / "stdout.log"
        stdout_mb = stdout_log.stat().st_size / 1e6
        print(f"records: {args.records:,} ({stdout_mb:.0f} MB of stdout)")
        print(f"raw docker run > /dev/null : {raw:6.2f} s")
        print(f"live-tests debug read      : {ours:6.2f} s")
        print(f"ratio live-tests / raw     : {ours / raw:6.2f}x   (target <= 1.10x)")

        print("harness peak RSS by record count (target: flat, <= 300 MB):")
        for size in (int(s) for s in args.memory_sizes.split(",")):
            config, catalog = write_inputs(workdir, size)
            elapsed, rss = timed(live_tests_read(workdir, config, catalog, f"mem{size}"))
            print(f"  {size:>10,} records: {rss / 2**20:7.1f} MiB peak RSS, {elapsed:6.2f} s")
            subprocess.run(["rm", "-rf", str(workdir / "out" / f"mem{size}")], check=True)


if __name__ == "__main__":
    main()
