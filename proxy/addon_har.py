"""HAR 1.2 from a .mitm dump, one flow at a time, with live-tests' annotations.

Standard library and mitmproxy only: copied into the proxy container next to the addon; the host
uses it too, for a proxy killed before it could write its HAR.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mitmproxy import connection, http, io, version
from mitmproxy.addons.savehar import SaveHar

try:  # on the host; in the proxy container the helpers sit next to this file
    from live_tests.proxy.addon_faults import fault_of
    from live_tests.proxy.addon_recording import META_REPLAY
except ImportError:
    from addon_faults import fault_of  # type: ignore[no-redef]
    from addon_recording import META_REPLAY  # type: ignore[no-redef]

META_SENT_URL = "live_tests.sent_url"  # the URL that went upstream, when map_remote & co rewrote it


def write_har(mitm_path: Path, har_path: Path) -> int:
    """Convert a .mitm dump to HAR 1.2 (streamed: mitmproxy's own `hardump` keeps every flow in memory).
    Returns the number of entries."""
    exporter = SaveHar()
    servers_seen: set[connection.Server] = set()
    tmp = har_path.with_suffix(".har.tmp")
    count = 0
    with open(mitm_path, "rb") as src, open(tmp, "w", encoding="utf-8") as out:
        creator = {"name": "mitmproxy (live-tests)", "version": version.VERSION, "comment": ""}
        out.write('{"log": {"version": "1.2", "creator": ' + json.dumps(creator) + ', "pages": [], "entries": [')
        for f in io.FlowReader(src).stream():
            if not isinstance(f, http.HTTPFlow):
                continue
            entry = exporter.flow_entry(f, servers_seen)
            _complete_har_entry(entry, f)
            out.write(("\n" if count == 0 else ",\n") + json.dumps(entry))
            count += 1
        out.write("\n]}}\n")
    os.replace(tmp, har_path)
    return count


def _complete_har_entry(entry: dict[str, Any], f: http.HTTPFlow) -> None:
    """Fill what HAR 1.2 requires and mitmproxy leaves out for failed flows; add our annotations."""
    response = entry["response"]
    content = response.setdefault("content", {})
    content.setdefault("size", 0)
    content.setdefault("mimeType", "")
    response.setdefault("httpVersion", "")
    for name in ("send", "wait", "receive"):
        entry["timings"][name] = max(0.0, entry["timings"].get(name) or 0.0)
    entry["_liveTests"] = {
        "cacheHit": f.metadata.get(META_REPLAY) == "hit",
        "replay": f.metadata.get(META_REPLAY),
        "sentUrl": f.metadata.get(META_SENT_URL),
        "error": f.error.msg if f.error else None,
        "fault": fault_of(f),
    }
