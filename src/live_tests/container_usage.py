"""Peak memory and CPU time of a running connector container, sampled until it exits."""

from __future__ import annotations

import os
import threading
from functools import partial
from pathlib import Path

import docker


class ContainerUsage(threading.Thread):
    """Samples the container's peak memory and CPU time until stopped.

    The engine drops the container's cgroup the moment it exits, and its stats API takes about
    half a second to answer a first time: short runs would go unmeasured. On a local engine the
    cgroup's own files are read every 50 ms instead (the kernel keeps the peak: any sample has the
    peak so far); elsewhere the stats API every 0.5 s. CPU time is the last sample's total.
    """

    def __init__(self, client: docker.DockerClient, container_id: str) -> None:
        super().__init__(daemon=True)
        self._api, self._id = client.api, container_id
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self.peak_memory: int | None = None
        self.cpu_seconds: float | None = None

    def run(self) -> None:
        files = cgroup_files(self._id)
        sample, interval = (partial(self._sample_files, *files), 0.05) if files else (self._sample_api, 0.5)
        while not self._stop_event.is_set() and sample():
            self._stop_event.wait(interval)

    def _sample_files(self, memory: Path, cpu: Path, cpu_in_usec: bool) -> bool:
        try:
            peak = int(memory.read_text())
            text = cpu.read_text()
        except (OSError, ValueError):  # the container exited: nothing more to measure
            return False
        # cgroup v2 cpu.stat starts "usage_usec N"; cgroup v1 cpuacct.usage is nanoseconds.
        self._record(peak, int(text.split()[1]) / 1e6 if cpu_in_usec else int(text) / 1e9)
        return True

    def _sample_api(self) -> bool:
        try:
            stats = self._api.stats(self._id, stream=False, one_shot=True)
        except Exception:  # the container is gone or stopped: nothing more to measure
            return False
        memory = stats.get("memory_stats") or {}
        cpu_ns = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage") or 0
        self._record(max(memory.get("max_usage", 0), memory.get("usage", 0)), cpu_ns / 1e9)
        return bool(memory or cpu_ns)

    def _record(self, memory: int, cpu_seconds: float) -> None:
        with self._lock:
            if memory:
                self.peak_memory = max(self.peak_memory or 0, memory)
            if cpu_seconds:
                self.cpu_seconds = max(self.cpu_seconds or 0.0, cpu_seconds)

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=5)


CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_files(container_id: str) -> tuple[Path, Path, bool] | None:
    """(peak memory file, CPU file, CPU in microseconds) of a container of a local engine, if readable."""
    host = os.environ.get("DOCKER_HOST", "")
    if host and not host.startswith("unix://"):
        return None
    layouts = (f"docker/{container_id}", f"system.slice/docker-{container_id}.scope")
    for layout in layouts:  # cgroup v1: one hierarchy per controller
        memory = CGROUP_ROOT / "memory" / layout / "memory.max_usage_in_bytes"
        cpu = CGROUP_ROOT / "cpuacct" / layout / "cpuacct.usage"
        if memory.exists() and cpu.exists():
            return memory, cpu, False
    for layout in layouts:  # cgroup v2: one unified hierarchy; memory.peak needs Linux 5.19
        directory = CGROUP_ROOT / layout
        if (directory / "memory.peak").exists() and (directory / "cpu.stat").exists():
            return directory / "memory.peak", directory / "cpu.stat", True
    return None
