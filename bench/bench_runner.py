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
import statistics
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


def raw_docker_run(workdir: Path, *docker_options: str) -> list[str]:
    return [
        "docker", "run", "--rm", *docker_options, "-v", f"{workdir}:/inputs:ro", IMAGE,
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
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side, alternated; the best is kept")
    args = parser.parse_args()

    client = docker.from_env()
    build_image(client)
    with tempfile.TemporaryDirectory(prefix="live-tests-bench-") as tmp:
        workdir = Path(tmp)
        config, catalog = write_inputs(workdir, args.records)
        # Alternated, so that a noisy neighbour slows both sides alike; each live-tests run's output
        # is removed (and written back to disk) before the next run starts.
        raw_times, unlogged_times, our_times = [], [], []
        for i in range(args.repeat):
            raw_times.append(timed(raw_docker_run(workdir))[0])
            unlogged_times.append(timed(raw_docker_run(workdir, "--log-driver", "none"))[0])
            our_times.append(timed(live_tests_read(workdir, config, catalog, f"speed{i}"))[0])
            stdout_log = workdir / "out" / f"speed{i}" / "bench-source" / "read" / "latest" / "stdout.log"
            stdout_mb = stdout_log.stat().st_size / 1e6
            subprocess.run(["rm", "-rf", str(workdir / "out" / f"speed{i}")], check=True)
            subprocess.run(["sync"], check=True)
            print(
                f"  run {i + 1}: raw {raw_times[-1]:5.2f} s, raw without engine log {unlogged_times[-1]:5.2f} s, "
                f"live-tests {our_times[-1]:5.2f} s"
            )
        raw, ours = min(raw_times), min(our_times)
        print(f"records: {args.records:,} ({stdout_mb:.0f} MB of stdout), best of {args.repeat} each")
        print(f"raw docker run > /dev/null : {raw:6.2f} s")
        print(f"live-tests debug read      : {ours:6.2f} s")
        print(f"ratio live-tests / raw     : {ours / raw:6.2f}x   (target <= 1.10x)")
        print(f"ratio of the medians       : {statistics.median(our_times) / statistics.median(raw_times):6.2f}x")
        # Not the target, but the floor: the engine's own log file is most of the raw run's cost.
        unlogged = min(unlogged_times)
        print(f"raw, --log-driver none     : {unlogged:6.2f} s   (live-tests is {ours / unlogged:.2f}x that)")

        print("harness peak RSS by record count (target: flat, <= 300 MB):")
        for size in (int(s) for s in args.memory_sizes.split(",")):
            config, catalog = write_inputs(workdir, size)
            elapsed, rss = timed(live_tests_read(workdir, config, catalog, f"mem{size}"))
            print(f"  {size:>10,} records: {rss / 2**20:7.1f} MiB peak RSS, {elapsed:6.2f} s")
            subprocess.run(["rm", "-rf", str(workdir / "out" / f"mem{size}")], check=True)


if __name__ == "__main__":
    main()
