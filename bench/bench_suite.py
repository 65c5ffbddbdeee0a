"""The regression suite's wall time against one version's own run time, and the proxy's cost per execution.

    python bench/bench_suite.py [--rounds 3] [--count 100] [--control 6.2.38] [--target 7.2.1]

Baseline: ONE version (the control) of airbyte/source-faker runs spec, check, discover, read and
read-with-state back to back with raw `docker run --rm` (inputs mounted read-only), and the same
with `--log-driver none`. Suite: `pytest regression_tests` on control vs target, as a user runs it,
with HTTP capture on (the default), with `--no-noise-baseline` and with `--disable-proxy`. Per
execution: `live-tests debug spec` on the demo image with and without the proxy, against a raw
`docker run IMAGE spec`. Every side runs once per round, alternated, so that a noisy neighbour slows
all of them alike; best and median are printed, and the ratios suite / baseline.

Session folders and debug outputs go to a temporary folder that is removed; whatever a run left on
the engine is removed too (it prints what it had to remove: normally nothing).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import docker

from live_tests.docker_engine import remove_leftovers
from live_tests.models import Command
from live_tests.runner import airbyte_arguments

REPO = Path(__file__).resolve().parent.parent
FAKER_DATA = REPO / "tests" / "data" / "faker"
FAKER = "airbyte/source-faker"
DEMO_IMAGE = "live-tests/source-demo:1.0.0"
COMMANDS = (Command.SPEC, Command.CHECK, Command.DISCOVER, Command.READ, Command.READ_WITH_STATE)
INPUTS_MOUNT = "/bench_inputs"
SUITE_TARGET = 1.3  # the target for the default suite against the baseline
PROXY_TARGET_S = 0.5


@dataclass
class Timings:
    label: str
    short: str  # in the per-round line
    seconds: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def run(command: list[str], *, ok: tuple[int, ...] = (0,), cwd: Path | None = None) -> float:
    """Wall time of `command`; its output is dropped, a failure ends the bench with its tail."""
    started = time.perf_counter()
    process = subprocess.run(command, cwd=cwd, capture_output=True)
    elapsed = time.perf_counter() - started
    if process.returncode not in ok:
        tail = (process.stdout.decode(errors="replace") + process.stderr.decode(errors="replace"))[-3000:]
        sys.exit(f"exit code {process.returncode}: {' '.join(command)}\n{tail}")
    return elapsed


def ensure_faker_images(client: docker.DockerClient, versions: tuple[str, ...]) -> None:
    """Build the faker versions from PyPI as the tests do (`live-tests images pypi`), if missing."""
    missing = [v for v in versions if not client.images.list(name=f"{FAKER}:{v}")]
    if not missing:
        return
    from live_tests.images import build_pypi_connector_image, ensure_base_image

    base = ensure_base_image(client)
    for version in missing:
        print(f"building {FAKER}:{version} from PyPI ...", flush=True)
        build_pypi_connector_image(client, "airbyte-source-faker", version, base)


def raw_command(image: str, command: Command, inputs: Path, *docker_options: str) -> list[str]:
    return [
        "docker", "run", "--rm", *docker_options, "-v", f"{inputs}:{INPUTS_MOUNT}:ro", image,
        *airbyte_arguments(command, INPUTS_MOUNT),
    ]  # fmt: skip


def write_inputs(inputs: Path, image: str, count: int) -> None:
    """config.json (count records per stream), catalog.json, and state.json: the final state of a read."""
    inputs.mkdir(parents=True)
    config = json.loads((FAKER_DATA / "config.json").read_text()) | {"count": count}
    (inputs / "config.json").write_text(json.dumps(config))
    (inputs / "catalog.json").write_text((FAKER_DATA / "configured_catalog.json").read_text())
    read = subprocess.run(raw_command(image, Command.READ, inputs), capture_output=True, check=True)
    states: dict[str, dict] = {}
    for line in read.stdout.splitlines():
        message = json.loads(line) if line.startswith(b"{") else {}
        if message.get("type") == "STATE" and "stream" in message["state"]:
            states[json.dumps(message["state"]["stream"]["stream_descriptor"])] = message["state"]
    if not states:
        sys.exit(f"the {image} read printed no per-stream STATE to resume from")
    (inputs / "state.json").write_text(json.dumps(list(states.values())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each side, alternated (default 3)")
    parser.add_argument("--count", type=int, default=100, help="faker records per stream (default 100)")
    parser.add_argument("--control", default="6.2.38")
    parser.add_argument("--target", default="7.2.1")
    parser.add_argument("--max-parallel", type=int, help="the suite's --max-parallel (default: its own)")
    args = parser.parse_args()

    client = docker.from_env()
    ensure_faker_images(client, (args.control, args.target))
    if not client.images.list(name=DEMO_IMAGE):
        from live_tests.images import build_demo_images, ensure_base_image

        build_demo_images(client, ensure_base_image(client))
    control = f"{FAKER}:{args.control}"
    run_ids: list[str] = []

    def run_id(kind: str) -> str:
        run_ids.append(f"bench-{kind}-{uuid.uuid4().hex[:8]}")
        return run_ids[-1]

    with tempfile.TemporaryDirectory(prefix="live-tests-bench-suite-") as tmp:
        work = Path(tmp)
        inputs = work / "inputs"
        write_inputs(inputs, control, args.count)
        suite_args = [
            sys.executable, "-m", "pytest", "regression_tests", "-p", "no:cacheprovider", "-q",
            f"--connector-image={FAKER}", f"--control-version={args.control}", f"--target-version={args.target}",
            f"--config-path={inputs / 'config.json'}", f"--catalog-path={inputs / 'catalog.json'}",
            f"--state-path={inputs / 'state.json'}",
            *([f"--max-parallel={args.max_parallel}"] if args.max_parallel else []),
        ]  # fmt: skip

        def suite(*extra: str) -> Callable[[], float]:
            def once() -> float:
                rid = run_id("suite")
                # 0: every test passed, 1: some found a difference; both are a complete run.
                return run([*suite_args, f"--run-id={rid}", f"--session-dir={work / rid}", *extra], ok=(0, 1), cwd=REPO)

            return once

        def baseline(*docker_options: str) -> Callable[[], float]:
            return lambda: sum(run(raw_command(control, c, inputs, *docker_options)) for c in COMMANDS)

        def debug_spec(*extra: str) -> Callable[[], float]:
            def once() -> float:
                rid = run_id("spec")
                command = [sys.executable, "-m", "live_tests.cli", "debug", "spec", "-c", DEMO_IMAGE]
                return run([*command, "--output-dir", str(work / "debug"), "--run-id", rid, *extra])

            return once

        raw_spec = ["docker", "run", "--rm", DEMO_IMAGE, "spec"]
        sides: list[tuple[Timings, Callable[[], float]]] = [
            (Timings("baseline: 5 commands, raw docker run", "raw"), baseline()),
            (Timings("baseline, --log-driver none", "raw-nolog"), baseline("--log-driver", "none")),
            (Timings("suite, HTTP capture (default)", "suite"), suite()),
            (Timings("suite --no-noise-baseline", "no-noise"), suite("--no-noise-baseline")),
            (Timings("suite --disable-proxy", "no-proxy"), suite("--disable-proxy")),
            (Timings("spec: raw docker run (demo)", "spec-raw"), lambda: run(raw_spec)),
            (Timings("spec: live-tests debug, no proxy", "spec-plain"), debug_spec("--disable-proxy")),
            (Timings("spec: live-tests debug, proxy", "spec-proxy"), debug_spec()),
        ]
        try:
            for round_ in range(args.rounds):
                for timings, side in sides:
                    timings.seconds.append(side())
                shown = " ".join(f"{t.short} {t.seconds[-1]:.1f}" for t, _ in sides)
                print(f"round {round_ + 1}/{args.rounds} (s): {shown}", flush=True)
        finally:
            for rid in run_ids:
                removed = remove_leftovers(client, rid)
                left = [*removed.containers, *removed.networks, *removed.volumes]
                if left:
                    print(f"removed what run {rid} left on the engine: {', '.join(left)}")

    raw, unlogged = sides[0][0], sides[1][0]
    print(f"\nsource-faker {args.control} vs {args.target}, {args.count} records per stream, {args.rounds} round(s)")
    print(f"{'':40} {'best':>7} {'median':>7} {'/baseline':>10} {'/log-none':>10}")
    for timings, _ in sides[:5]:
        ratios = f"{timings.best / raw.best:9.2f}x {timings.best / unlogged.best:9.2f}x"
        print(f"{timings.label:40} {timings.best:6.2f}s {timings.median:6.2f}s {ratios}")
    default = sides[2][0]
    print(
        f"default suite / baseline: {default.best / raw.best:.2f}x best, {default.median / raw.median:.2f}x median"
        f" (target <= {SUITE_TARGET}x); / --log-driver none: {default.best / unlogged.best:.2f}x best"
    )
    spec_raw, spec_plain, spec_proxy = (timings for timings, _ in sides[5:])
    print(f"\nper execution (`spec` on {DEMO_IMAGE}):")
    for timings in (spec_raw, spec_plain, spec_proxy):
        print(f"{timings.label:40} {timings.best:6.2f}s {timings.median:6.2f}s")
    overhead = spec_proxy.best - spec_plain.best
    print(
        f"proxy cost of a run of one execution (the run's proxy started and stopped for it): {overhead:.2f} s best,"
        f" {spec_proxy.median - spec_plain.median:.2f} s median; live-tests without proxy over raw:"
        f" {spec_plain.best - spec_raw.best:.2f} s"
    )
    # The suite's executions: control and target of the five commands, and the control's two reruns.
    executions = 2 * len(COMMANDS) + 2
    no_proxy = sides[4][0]
    print(
        f"proxy cost per execution in a session ((suite - suite --disable-proxy) / {executions}):"
        f" {(default.best - no_proxy.best) / executions:.2f} s best,"
        f" {(default.median - no_proxy.median) / executions:.2f} s median (target <= {PROXY_TARGET_S} s)"
    )


if __name__ == "__main__":
    main()
