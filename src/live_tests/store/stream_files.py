"""File names of the records_per_stream/ files: one per (stream, namespace), listed in a manifest."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path

import orjson

StreamKey = tuple[str, str | None]
MANIFEST = "manifest.json"
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9_.-]")
# A stream's file name is at most this long before its hash suffix (file systems allow 255 bytes).
_MAX_STEM = 100


def stream_file_name(stream: str, namespace: str | None, *, hashed: bool = False) -> str:
    """The stem of a stream's file: the name when it is a safe, short file name, else (or when
    `hashed`) its sanitised start and a hash of namespace and stream, so that `a/b` and `a_b`,
    or a 300-character name, get files of their own."""
    name = f"{namespace}.{stream}" if namespace else stream
    safe = _UNSAFE_FILENAME.sub("_", name) or "_"
    if safe == name and len(name) <= _MAX_STEM and not hashed and not name.startswith("."):
        return name
    digest = hashlib.sha256(f"{namespace or ''}\0{stream}".encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{safe[:_MAX_STEM]}-{digest}"


class StreamFileNames:
    """The stems given out in one execution, in order of first appearance: unique even when two
    safe names meet (namespace `ns` + stream `s` and stream `ns.s`: the second is hashed)."""

    def __init__(self) -> None:
        self._stems: dict[StreamKey, str] = {}
        self._taken: set[str] = set()

    def stem(self, key: StreamKey) -> str:
        stem = self._stems.get(key)
        if stem is None:
            stem = stream_file_name(*key)
            if stem in self._taken:
                stem = stream_file_name(*key, hashed=True)
            self._stems[key] = stem
            self._taken.add(stem)
        return stem

    def write_manifest(self, directory: Path, counts: Mapping[StreamKey, int]) -> None:
        """directory/manifest.json: file -> stream, namespace and record count."""
        manifest = {
            f"{stem}.jsonl": {"stream": key[0], "namespace": key[1], "count": counts.get(key, 0)}
            for key, stem in sorted(self._stems.items(), key=lambda item: item[1])
        }
        (directory / MANIFEST).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
