"""How executions are proxied: the mode, the proxy image, and the user's mitmproxy options, checked.

Everything here is checked on the host before any container starts, so a typo in a flag is one
line saying what to fix.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from live_tests.models import InputError
from live_tests.proxy.faults import HttpFault, parse_http_faults

MITMPROXY_VERSION = "11.0.2"
DEFAULT_PROXY_IMAGE = f"live-tests/mitmproxy:{MITMPROXY_VERSION}"

# Options the stage sets itself and the user may not; see DEFAULT_OPTIONS for the ones they may.
RESERVED_OPTIONS = frozenset(
    {
        "confdir",
        "listen_host",
        "listen_port",
        "mode",
        "live_tests_dump_dir",
        "live_tests_mode",
        "live_tests_recording",
        "live_tests_faults",
    }
)
# Our defaults for options the user may set: a `--proxy-option` of the same key replaces ours.
DEFAULT_OPTIONS: Mapping[str, str] = {
    # Without it mitmproxy connects to the original host before map_remote can redirect.
    "connection_strategy": "lazy",
}


class ProxyMode(StrEnum):
    CAPTURE = "capture"  # everything goes upstream and is recorded
    CACHE = "cache"  # the control's recording answers the target; the rest goes upstream
    REPLAY = "replay"  # hermetic: only a given recording answers, nothing leaves the proxy


def parse_proxy_options(values: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """`KEY=VALUE` strings (repeatable, e.g. map_remote) -> {key: values in order}."""
    options: dict[str, list[str]] = {}
    for value in values:
        key, sep, val = value.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(
                f"--proxy-option {value!r}: expected KEY=VALUE, e.g. map_remote='|https://api|http://host:8000'"
            )
        if key in RESERVED_OPTIONS:
            raise InputError(f"--proxy-option {key}: live-tests sets this mitmproxy option itself")
        options.setdefault(key, []).append(val)
    return {key: tuple(vals) for key, vals in options.items()}


@dataclass(frozen=True)
class ProxySettings:
    """How executions are proxied; one per run."""

    image: str = DEFAULT_PROXY_IMAGE
    mode: ProxyMode = ProxyMode.CAPTURE
    # REPLAY: the .mitm or HAR every request is answered from.
    replay_path: Path | None = None
    # mitmproxy options (`--set KEY=VALUE`), several values for a repeatable one.
    options: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # False: --disable-proxy, connectors run on the engine's default network, nothing is captured.
    enabled: bool = True
    # --http-fault scenarios, applied by every execution's proxy alike.
    faults: tuple[HttpFault, ...] = ()
    ready_timeout_s: float = 60.0
    stop_timeout_s: float = 30.0

    @classmethod
    def from_cli(
        cls,
        *,
        image: str = DEFAULT_PROXY_IMAGE,
        disable_proxy: bool = False,
        proxy_options: Sequence[str] = (),
        http_cache: bool = False,
        http_replay: Path | None = None,
        http_faults: Sequence[str] = (),
    ) -> ProxySettings:
        """Settings from the `live-tests debug` flags, checked; InputError says what to fix."""
        if http_cache and http_replay is not None:
            raise InputError("--http-cache and --http-replay exclude each other: pick one")
        if disable_proxy and (http_cache or http_replay is not None or proxy_options or http_faults):
            raise InputError(
                "--disable-proxy turns the proxy off: drop --http-cache, --http-replay, --proxy-option and --http-fault"
            )
        mode = ProxyMode.REPLAY if http_replay is not None else ProxyMode.CACHE if http_cache else ProxyMode.CAPTURE
        settings = cls(
            image=image,
            mode=mode,
            replay_path=http_replay,
            options=parse_proxy_options(proxy_options),
            enabled=not disable_proxy,
            faults=parse_http_faults(http_faults),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if not self.enabled:
            return
        if self.mode is ProxyMode.REPLAY:
            if self.replay_path is None:
                raise InputError("replay mode needs a recording: --http-replay PATH (an http_dump.mitm or .har)")
            check_recording(self.replay_path)
        validate_mitmproxy_options(self.options)

    def mitmproxy_options(self) -> dict[str, tuple[str, ...]]:
        """Our defaults, each replaced by the user's option of the same key (mitmdump takes one value)."""
        return {**{key: (value,) for key, value in DEFAULT_OPTIONS.items()}, **self.options}


def check_recording(path: Path) -> int:
    """Number of recorded responses in a .mitm or HAR file; InputError when it cannot be used."""
    from mitmproxy import exceptions, http
    from mitmproxy.io import FlowReader

    if not path.is_file():
        raise InputError(
            f"--http-replay {path}: no such file (give an http_dump.mitm or http_dump.har of an earlier run)"
        )
    count = 0
    try:
        with path.open("rb") as f:
            for flow in FlowReader(f).stream():
                count += isinstance(flow, http.HTTPFlow) and flow.response is not None
    except (exceptions.FlowReadException, OSError, ValueError) as exc:
        raise InputError(f"--http-replay {path}: not a mitmproxy dump or HAR file ({exc})") from None
    return count


def validate_mitmproxy_options(options: Mapping[str, Sequence[str]]) -> None:
    """Check option names and values with the host's mitmproxy, so a typo fails before any container."""
    if not options:
        return
    from mitmproxy import exceptions
    from mitmproxy import options as mitm_options
    from mitmproxy.addons import default_addons
    from mitmproxy.addons.mapremote import parse_map_remote_spec
    from mitmproxy.addons.termlog import TermLog
    from mitmproxy.tools.dump import dumper, errorcheck, keepserving, readfile

    from live_tests.proxy.addon import LiveTestsAddon

    class _Loader:  # what an addon's load() needs to declare its options, without running it
        def __init__(self, opts: Any) -> None:
            self.add_option = opts.add_option

        def add_command(self, *args: Any, **kwargs: Any) -> None:
            pass

    async def declare_all() -> Any:
        opts = mitm_options.Options()
        loader = _Loader(opts)
        extra = (dumper.Dumper(), keepserving.KeepServing(), readfile.ReadFileStdin(), errorcheck.ErrorCheck())
        for addon in (*default_addons(), *extra, TermLog(), LiveTestsAddon()):
            if hasattr(addon, "load"):
                addon.load(loader)
        return opts

    opts = asyncio.run(declare_all())  # some addons want an event loop when constructed
    for key, values in options.items():
        shown = f"--proxy-option {key}={values[-1]}"
        try:
            opts.set(*(f"{key}={value}" for value in values))
        except exceptions.OptionsError as exc:
            raise InputError(f"{shown}: {exc}") from None
        choices = opts._options[key].choices
        if choices and any(value not in choices for value in values):
            raise InputError(f"{shown}: expected one of {', '.join(choices)}")
        for spec in values if key == "map_remote" else ():
            try:
                parse_map_remote_spec(spec)
            except ValueError as exc:
                raise InputError(f"--proxy-option map_remote={spec}: {exc}") from None
