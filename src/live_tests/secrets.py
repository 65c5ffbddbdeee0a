"""Mask connector secrets in everything a run wrote: artifacts, logs, HTTP dumps, reports, duck.db.

Secrets are the config values at properties the spec marks `airbyte_secret`. They are searched in
every form they take in files (`encoded_forms`), as UTF-8 and latin-1 bytes: raw; JSON-escaped up to
`JSON_ESCAPE_DEPTH` times (a JSON string holding JSON holding the secret), ASCII-escaped or not;
HTML-escaped; URL-encoded with upper- or lowercase %xx; base64 (standard and URL-safe, at every byte
alignment); Python repr; and as a file name. Text files get a fixed mask (it hides the length too);
file and folder names holding a secret are renamed. `.mitm` dumps are tnetstrings, whose length
prefixes would break if a value changed size, so there each secret is replaced by as many `*` as it
has bytes: the dump stays readable by mitmproxy. Secrets inside bodies an upstream compressed
although the proxy asked for identity (gzip, brotli), or
base64 of a longer value at an alignment shorter than `MIN_BASE64_LENGTH`, are not found by a byte
search. duck.db: VARCHAR and JSON columns are rewritten with `replace`, then the database is copied
into a fresh file, so that no freed block of the old one still holds a secret.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import duckdb

from live_tests.secret_forms import encoded_forms
from live_tests.sql import literal as sql_literal
from live_tests.sql import quote_identifier
from live_tests.store.session_db import STORAGE_VERSION

MASK = "**********"
# Shorter values are not masked: replacing e.g. "1" everywhere would corrupt every file (and a
# value that short protects nothing). `SecretMasker.skipped` lists them so callers can warn.
MIN_SECRET_LENGTH = 4
# Files scrubbed in place with same-length masks (binary formats with length prefixes).
SAME_LENGTH_SUFFIXES = (".mitm",)
# Scrubbed through SQL, not as bytes.
DUCKDB_SUFFIXES = (".db", ".duckdb")
_DUCKDB_SIDE_FILES = (".wal", ".tmp")
_CHUNK = 1 << 20
# Words (of a property name split on _, -, spaces and camelCase) that say it holds a secret.
# One rule for both uses: masking a config when no spec is available, and the suite's check that
# properties named like secrets are marked airbyte_secret.
SECRET_WORDS = frozenset(
    {"password", "passwd", "passphrase", "pass", "secret", "token", "apikey", "credentials", "jwt"}
)
SECRET_WORD_PAIRS = frozenset(
    {("api", "key"), ("access", "key"), ("private", "key"), ("secret", "key"), ("client", "secret"),
     ("auth", "key"), ("signing", "key"), ("session", "key"), ("account", "key"), ("service", "account")}
)  # fmt: skip
# ...unless the name ends with one of these: it names something about the secret, not the secret.
NOT_SECRET_LAST_WORDS = frozenset(
    {"url", "uri", "endpoint", "type", "method", "name", "path", "date", "time", "expiry", "expires", "at",
     "in", "format", "header", "prefix", "field", "location", "mode", "title", "id", "enabled", "file"}
)  # fmt: skip
_COMBINATORS = ("oneOf", "anyOf", "allOf")


def secret_paths(connection_specification: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """Config paths (property names) marked `airbyte_secret`; oneOf/anyOf/allOf and items are transparent."""
    found: list[tuple[str, ...]] = []

    def walk(schema: Any, path: tuple[str, ...]) -> None:
        if not isinstance(schema, Mapping):
            return
        if schema.get("airbyte_secret") is True and path and path not in found:
            found.append(path)
        properties = schema.get("properties")
        if isinstance(properties, Mapping):
            for name, sub in properties.items():
                walk(sub, (*path, str(name)))
        for key in _COMBINATORS:
            for sub in schema.get(key) or ():
                walk(sub, path)
        walk(schema.get("items"), path)

    walk(connection_specification, ())
    return found


def values_at(config: Any, path: Sequence[str]) -> Iterator[Any]:
    """Values found in `config` along `path`; lists along the way are searched element by element."""
    if isinstance(config, list):
        for item in config:
            yield from values_at(item, path)
        return
    if not path:
        yield config
        return
    if isinstance(config, Mapping) and path[0] in config:
        yield from values_at(config[path[0]], path[1:])


def _scalars(value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from _scalars(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def secret_values(connection_specification: Mapping[str, Any] | None, config: Mapping[str, Any]) -> list[str]:
    """The secret values of a config. Without a spec, values of properties whose name looks secret."""
    values: list[str] = []
    if connection_specification is not None:
        for path in secret_paths(connection_specification):
            for value in values_at(config, path):
                values += _scalars(value)
    else:
        values += _named_secrets(config)
    return list(dict.fromkeys(values))


def name_words(name: str) -> list[str]:
    """`clientSecret_v2` -> ["client", "secret", "v2"]."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]


def looks_secret(name: str) -> bool:
    """Whether a property name says it holds a secret (password, api_key, clientSecret, …)."""
    words = name_words(name)
    if not words or words[-1] in NOT_SECRET_LAST_WORDS:
        return False
    if SECRET_WORDS.intersection(words):
        return True
    return any(pair in SECRET_WORD_PAIRS for pair in itertools.pairwise(words))


def _named_secrets(config: Any) -> Iterator[str]:
    if isinstance(config, Mapping):
        for name, value in config.items():
            if looks_secret(str(name)) and not isinstance(value, Mapping | list):
                yield from _scalars(value)
            else:
                yield from _named_secrets(value)
    elif isinstance(config, list):
        for item in config:
            yield from _named_secrets(item)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: only its escaped forms can be in a file
        return False
    return True


@dataclass(frozen=True)
class SecretMasker:
    """Replaces secret values (in all their encoded forms) with a mask."""

    secrets: tuple[str, ...] = ()
    mask: str = MASK
    skipped: tuple[str, ...] = field(default=(), repr=False)  # too short to mask safely

    @classmethod
    def of(cls, values: Iterable[str], mask: str = MASK) -> SecretMasker:
        values = list(dict.fromkeys(v for v in values if v))
        kept = tuple(v for v in values if len(v) >= MIN_SECRET_LENGTH)
        return cls(kept, mask, tuple(v for v in values if len(v) < MIN_SECRET_LENGTH))

    def __bool__(self) -> bool:
        return bool(self.secrets)

    @functools.cached_property
    def needles(self) -> list[str]:
        """Every form of every secret, longest first (so a form containing another goes first)."""
        forms = {form for secret in self.secrets for form in encoded_forms(secret) if form and _utf8(form)}
        return sorted(forms, key=lambda f: (-len(f), f))

    def byte_replacements(self, same_length: bool = False) -> list[tuple[bytes, bytes]]:
        """Each needle in UTF-8 and, where it differs, latin-1 (HTTP headers in .mitm dumps); longest first."""
        raws = set()
        for needle in self.needles:
            raws.add(needle.encode("utf-8"))
            with contextlib.suppress(UnicodeEncodeError):
                raws.add(needle.encode("latin-1"))
        ordered = sorted(raws, key=lambda r: (-len(r), r))
        return [(raw, b"*" * len(raw) if same_length else self.mask.encode()) for raw in ordered]

    def mask_text(self, text: str) -> str:
        for needle in self.needles:
            if needle in text:
                text = text.replace(needle, self.mask)
        return text

    def contains_secret(self, text: str) -> bool:
        return any(needle in text for needle in self.needles)


@dataclass
class ScrubReport:
    files_scanned: int = 0
    files_masked: list[Path] = field(default_factory=list)
    binary_dumps_masked: list[Path] = field(default_factory=list)  # .mitm, masked with same-length masks
    database_cells_masked: int = 0
    databases: list[Path] = field(default_factory=list)


_ALNUM_RUN = re.compile(rb"[A-Za-z0-9]+")


def _anchor(needle: bytes) -> bytes:
    """A part every occurrence of the needle contains: its longest run of letters and digits
    (escaping never touches those), else the needle itself."""
    runs = _ALNUM_RUN.findall(needle)
    longest = max(runs, key=len, default=b"")
    return longest if len(longest) >= 3 else needle


def _replace_stream(source: IO[bytes], target: IO[bytes] | None, pairs: list[tuple[bytes, bytes]]) -> bool:
    """Copy source to target with replacements, in chunks (a secret may straddle two); True if any."""
    keep = max(len(needle) for needle, _ in pairs) - 1
    by_anchor: dict[bytes, list[int]] = {}
    for index, (needle, _) in enumerate(pairs):
        by_anchor.setdefault(_anchor(needle), []).append(index)
    carry = b""
    found = False
    while True:
        block = source.read(_CHUNK)
        buffer = carry + block
        # The forms of a secret share few anchors: look for those first, then only for their forms.
        candidates = sorted(i for anchor, indices in by_anchor.items() if anchor in buffer for i in indices)
        for needle, replacement in (pairs[i] for i in candidates):  # still longest first
            if needle in buffer:
                found = True
                buffer = buffer.replace(needle, replacement)
        if not block:
            if target is not None:
                target.write(buffer)
            return found
        # Keep the tail: it may be the start of a secret that the next chunk completes.
        cut = max(0, len(buffer) - keep)
        if target is not None:
            target.write(buffer[:cut])
        carry = buffer[cut:]


def scrub_file(path: Path, masker: SecretMasker, same_length: bool = False) -> bool:
    """Mask the secrets of one file in place (streamed; rewritten only if it holds one). True if changed."""
    if not masker:
        return False
    pairs = masker.byte_replacements(same_length)
    with path.open("rb") as source:
        if not _replace_stream(source, None, pairs):
            return False
    mode = path.stat().st_mode
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".masking", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as target, path.open("rb") as source:
            _replace_stream(source, target, pairs)
        os.chmod(tmp_name, mode & 0o7777)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return True


def _is_duckdb(path: Path) -> bool:
    if path.suffix in DUCKDB_SUFFIXES:
        return True
    return any(path.name.endswith(suffix + side) for suffix in DUCKDB_SUFFIXES for side in _DUCKDB_SIDE_FILES)


def _rename_secret_names(root: Path, masker: SecretMasker) -> None:
    """Rename files and folders whose name holds a secret (a stream named after it), deepest first."""
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        name = masker.mask_text(path.name)
        if name == path.name:
            continue
        target = path.with_name(name)
        for n in itertools.count(2):
            if not target.exists():
                break
            target = path.with_name(f"{name}-{n}")
        path.rename(target)


def scrub_tree(root: Path, masker: SecretMasker, report: ScrubReport | None = None) -> ScrubReport:
    """Mask every file under `root` except DuckDB files (see `scrub_duckdb`); .mitm keep their sizes."""
    report = report or ScrubReport()
    if not masker:
        return report
    _rename_secret_names(root, masker)
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        if _is_duckdb(path):
            continue
        report.files_scanned += 1
        same_length = path.suffix in SAME_LENGTH_SUFFIXES
        if scrub_file(path, masker, same_length=same_length):
            (report.binary_dumps_masked if same_length else report.files_masked).append(path)
    return report


def _mask_column(
    con: duckdb.DuckDBPyConnection, table: str, col: str, data_type: str, needles: list[str], masker: SecretMasker
) -> int:
    """One scan finds which forms the column holds, one UPDATE masks them all (longest first)."""
    text = f"{col}::VARCHAR"

    def present(candidates: list[str]) -> list[str]:
        found_sql = ", ".join(f"bool_or(contains({text}, {sql_literal(c)}))" for c in candidates)
        flags = con.execute(f"SELECT {found_sql} FROM {table}").fetchone() or ()
        return [c for c, flag in zip(candidates, flags, strict=True) if flag]

    # As for files: the few anchors first (one scan), then only the forms of the anchors found.
    anchors = sorted({_anchor(n.encode()).decode() for n in needles})
    found = set(present(anchors))
    candidates = [n for n in needles if _anchor(n.encode()).decode() in found]
    present_needles = present(candidates) if candidates else []
    if not present_needles:
        return 0
    masked = text
    for needle in present_needles:
        masked = f"replace({masked}, {sql_literal(needle)}, {sql_literal(masker.mask)})"
    where = " OR ".join(f"contains({text}, {sql_literal(n)})" for n in present_needles)
    row = con.execute(f"UPDATE {table} SET {col} = ({masked})::{data_type} WHERE {where}").fetchone()
    return int(row[0]) if row else 0


def scrub_duckdb(path: Path, masker: SecretMasker) -> int:
    """Mask secrets in every VARCHAR/JSON column of a DuckDB file; returns the cells changed.

    When something changed, the database is copied into a new file that replaces the old one:
    an UPDATE leaves the old values in freed blocks until they are reused.
    """
    if not masker or not path.exists():
        return 0
    changed = 0
    con = duckdb.connect(str(path))
    try:
        columns = con.execute(
            """SELECT table_name, column_name, data_type FROM information_schema.columns
               WHERE table_schema = 'main' AND table_catalog = current_database()
                 AND data_type IN ('VARCHAR', 'JSON')
                 AND table_name IN (SELECT table_name FROM information_schema.tables
                                    WHERE table_type = 'BASE TABLE' AND table_schema = 'main'
                                      AND table_catalog = current_database())
               ORDER BY table_name, ordinal_position"""
        ).fetchall()
        needles = masker.needles
        for table, column, data_type in columns:
            changed += _mask_column(con, quote_identifier(table), quote_identifier(column), data_type, needles, masker)
        if changed:
            con.execute("CHECKPOINT")
            database = con.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
            fresh = path.with_name(path.name + ".masked")
            fresh.unlink(missing_ok=True)
            # The copy is a new file: written in the same storage version as the sessions' (see session_db).
            con.execute(
                f"ATTACH {sql_literal(str(fresh))} AS lt_masked (STORAGE_VERSION {sql_literal(STORAGE_VERSION)})"
            )
            con.execute(f"COPY FROM DATABASE {quote_identifier(database)} TO lt_masked")
            con.execute("DETACH lt_masked")
    finally:
        con.close()
    if changed:
        os.replace(path.with_name(path.name + ".masked"), path)
        for side in _DUCKDB_SIDE_FILES:
            path.with_name(path.name + side).unlink(missing_ok=True)
    return changed


def scrub_session(session_dir: Path, masker: SecretMasker) -> ScrubReport:
    """Mask every file of a session folder, DuckDB databases included. Close connections first."""
    report = ScrubReport()
    if not masker:
        return report
    for db in sorted(p for p in session_dir.rglob("*") if p.is_file() and p.suffix in DUCKDB_SUFFIXES):
        report.database_cells_masked += scrub_duckdb(db, masker)
        report.databases.append(db)
    return scrub_tree(session_dir, masker, report)
