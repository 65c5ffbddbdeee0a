"""The executions one proxy serves: a lane each, told apart by the port their connector connects to.

Standard library and mitmproxy only: copied into the proxy container next to the addon.

The host drives lanes with files in `live_tests_lanes_dir`, one folder per port (the proxy
listens on every port from the start):

- the host copies `<port>/lane.json` (name, mode, recording, faults), then an empty `registered`;
- the watcher (every 20 ms) opens the lane: its dumps in `<port>/dump/`, its recording, its fault
  counters. It answers `ready`: {"ok": true}, or {"ok": false, "error": "..."};
- the host adds `close` once the connector is gone; the watcher closes the dumps, writes the HAR and
  answers `closed` ({"flows": N}). No answer means the proxy no longer runs its event loop;
- meanwhile the watcher beats (`heartbeat`, twice a second): a beat that stops is a hung proxy.

Each lane's dumps are what one proxy per execution wrote before: the same files, the same content.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, BinaryIO

from mitmproxy import exceptions, http, io

try:  # on the host (option checks); in the proxy container the helpers sit next to this file
    from live_tests.proxy.addon_faults import FaultInjector
    from live_tests.proxy.addon_har import write_har
    from live_tests.proxy.addon_recording import Recording
except ImportError:
    from addon_faults import FaultInjector  # type: ignore[no-redef]
    from addon_har import write_har  # type: ignore[no-redef]
    from addon_recording import Recording  # type: ignore[no-redef]

MITM_FILE = "http_dump.mitm"
HAR_FILE = "http_dump.har"
FLOWS_FILE = "http_flows.jsonl"
REPLAY_FILE = "http_replay.json"  # what the recording could answer, and what it left out
MODES = ("capture", "cache", "replay")

LANE_FILE = "lane.json"
REGISTERED = "registered"
READY = "ready"
CLOSE = "close"
CLOSED = "closed"
DUMP_DIR = "dump"
HEARTBEAT = "heartbeat"  # in the lanes folder: {"beat": N}, N going up while the proxy's event loop runs
WATCH_INTERVAL_S = 0.02
HEARTBEAT_S = 0.5

logger = logging.getLogger("live_tests")


class Lane:
    """One execution's proxy state: what it answers from, its faults, its dumps."""

    def __init__(self, directory: Path, config: dict[str, Any], ignore_params: frozenset[str], ignore_content: bool):
        self.name = str(config.get("name") or directory.name)
        self.mode = str(config.get("mode") or "capture")
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}")
        self.faults = FaultInjector()
        self.faults.configure(config.get("faults") or "")
        self.recording: Recording | None = None
        recording = config.get("recording") or ""
        if self.mode != "capture":
            if not recording:
                raise ValueError(f"mode {self.mode} needs a recording")
            try:
                self.recording = Recording(recording, ignore_params, ignore_content)
            except exceptions.OptionsError as exc:  # says which recording already
                raise ValueError(str(exc)) from exc
            except (OSError, exceptions.FlowReadException) as exc:
                raise ValueError(f"cannot read recording {recording}: {exc}") from exc
        self.dump_dir = directory / DUMP_DIR
        self.dump_dir.mkdir(parents=True, exist_ok=True)
        self._mitm: BinaryIO = open(self.dump_dir / MITM_FILE, "wb")  # noqa: SIM115 - closed in close()
        self.writer = io.FlowWriter(self._mitm)
        self._flows: BinaryIO = open(self.dump_dir / FLOWS_FILE, "wb")  # noqa: SIM115
        self.flows = 0
        if self.recording is not None:
            self._announce_recording()

    def _announce_recording(self) -> None:
        assert self.recording is not None
        logger.warning(f"live-tests {self.name}: {self.mode} mode, {len(self.recording)} recorded responses")
        if self.recording.left_out:
            logger.warning(
                f"live-tests {self.name}: left out {len(self.recording.left_out)} flows with streamed bodies"
                f" (not kept in the recording, cannot be replayed faithfully): {self.recording.left_out[:5]}"
            )
        info = {
            "recording": os.path.basename(self.recording.path),
            "responses": len(self.recording),
            "left_out_streamed": self.recording.left_out,
        }
        (self.dump_dir / REPLAY_FILE).write_text(json.dumps(info, indent=2) + "\n")

    def write_flow(self, flow: http.HTTPFlow) -> None:
        self.writer.add(flow)
        self._mitm.flush()

    def write_line(self, line: dict[str, Any]) -> None:
        line.setdefault("cache_hit", False)
        self._flows.write(json.dumps(line).encode() + b"\n")
        self._flows.flush()
        self.flows += 1

    def close(self) -> None:
        """Close the dumps and write the HAR (slow for a big dump: run it off the event loop)."""
        for f in (self._mitm, self._flows):
            f.close()
        if self.recording is not None:
            self.recording.close()
        write_har(self.dump_dir / MITM_FILE, self.dump_dir / HAR_FILE)


class Lanes:
    """The open lanes by port, and the watcher that opens and closes them at the host's request."""

    def __init__(self) -> None:
        self.directory: Path | None = None
        self._open: dict[int, Lane] = {}
        self._done: set[int] = set()
        self._task: asyncio.Task[None] | None = None

    def of(self, client: Any) -> Lane | None:
        """The lane of a client connection (by the port it connected to), None if no execution has it."""
        mode = getattr(client, "proxy_mode", None)
        port = mode.listen_port() if mode is not None else None
        return self._open.get(port) if port is not None else None

    def start(self, ignore_params: frozenset[str], ignore_content: bool) -> None:
        if self.directory is not None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch(ignore_params, ignore_content))

    async def _watch(self, ignore_params: frozenset[str], ignore_content: bool) -> None:
        assert self.directory is not None
        beats, beaten = 0, 0.0
        while True:
            if time.monotonic() - beaten >= HEARTBEAT_S:  # the host's sign that the event loop runs
                beats, beaten = beats + 1, time.monotonic()
                _answer(self.directory / HEARTBEAT, {"beat": beats})
            for entry in os.scandir(self.directory):
                if not entry.name.isdigit():
                    continue
                port, folder = int(entry.name), Path(entry.path)
                if port not in self._open and port not in self._done and (folder / REGISTERED).exists():
                    self._register(port, folder, ignore_params, ignore_content)
                elif port in self._open and (folder / CLOSE).exists():
                    lane = self._open.pop(port)
                    self._done.add(port)
                    await asyncio.to_thread(self._close, lane, folder)
            await asyncio.sleep(WATCH_INTERVAL_S)

    def _register(self, port: int, folder: Path, ignore_params: frozenset[str], ignore_content: bool) -> None:
        try:
            config = json.loads((folder / LANE_FILE).read_text())
            self._open[port] = Lane(folder, config, ignore_params, ignore_content)
            answer: dict[str, Any] = {"ok": True}
            logger.warning(f"live-tests {self._open[port].name}: serving on port {port}")
        except (OSError, ValueError, TypeError) as exc:
            self._done.add(port)
            answer = {"ok": False, "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
            logger.warning(f"live-tests lane {port}: {answer['error']}")
        _answer(folder / READY, answer)

    @staticmethod
    def _close(lane: Lane, folder: Path) -> None:
        lane.close()
        _answer(folder / CLOSED, {"flows": lane.flows})

    def close_all(self) -> None:
        """On shutdown: every lane still open writes its dumps."""
        if self._task is not None:
            self._task.cancel()
        for port, lane in list(self._open.items()):
            self._open.pop(port)
            self._done.add(port)
            lane.close()
            if self.directory is not None:
                _answer(self.directory / str(port) / CLOSED, {"flows": lane.flows})
        logger.warning("live-tests proxy: dumps written")


def _answer(path: Path, content: dict[str, Any]) -> None:
    # Written whole, then renamed: the host never reads half an answer.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(content))
    os.replace(tmp, path)
