"""Accepted differences: findings a team has looked at and accepted for one version pair (`--accepted-diffs`).

The file (YAML, or JSON when it ends in .json) lists findings by test, kind, stream and path, and
optionally the control and target values; a finding that matches an entry is shown as accepted and
does not fail its test. `--update-accepted-diffs` rewrites the file with every finding of the run.

    connector: airbyte/source-faker      # optional: when given, must be the run's
    control_version: 6.2.38              # optional, idem
    target_version: 7.2.1                # optional, idem
    accepted:
      - test: test_records_are_the_same  # a test name; without [param] it covers every parameter
        kind: record_field_changed
        stream: users
        path: $.updated_at
        reason: the clock moved          # optional, for people
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from live_tests.compare import Finding, Severity
from live_tests.models import InputError

_FIELDS = ("test", "kind", "stream", "path", "control", "target", "reason")
_MISSING = object()


def _normal(value: Any) -> Any:
    """A value as JSON would give it back (tuples are lists, keys are strings), for comparison."""
    return orjson.loads(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str))


@dataclass(frozen=True)
class AcceptedDiff:
    test: str
    kind: str
    stream: str | None = None
    path: str | None = None
    control: Any = _MISSING  # compared only when the file gives it
    target: Any = _MISSING
    reason: str | None = None

    def matches(self, test: str, finding: Finding) -> bool:
        if self.test not in (test, test.partition("[")[0]):
            return False
        if (self.kind, self.stream, self.path) != (finding.kind, finding.stream, finding.path):
            return False
        return all(
            expected is _MISSING or _normal(expected) == _normal(actual)
            for expected, actual in ((self.control, finding.control), (self.target, finding.target))
        )


@dataclass
class AcceptedDiffs:
    """The accepted findings of a run (none without --accepted-diffs), and every finding seen, for the update."""

    path: Path | None = None
    entries: list[AcceptedDiff] = field(default_factory=list)
    used: set[int] = field(default_factory=set)  # indices of entries that matched a finding

    @classmethod
    def load(cls, path: Path, connector: str, control_version: str, target_version: str) -> AcceptedDiffs:
        """Read the file; InputError (one line) when it is not a valid accepted-differences file."""
        where = f"--accepted-diffs {path}"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{where}: cannot read it ({exc.strerror or exc})") from None
        try:
            document = orjson.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"{where}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {first}") from None
        if document is None:
            document = {"accepted": []}
        if not isinstance(document, Mapping) or not isinstance(document.get("accepted", []), list):
            raise InputError(f"{where}: expected a mapping with an `accepted:` list of findings")
        for name, value in (
            ("connector", connector),
            ("control_version", control_version),
            ("target_version", target_version),
        ):
            given = document.get(name)
            if given is not None and str(given) != value:
                raise InputError(f"{where}: it is for {name} {given}, this run's is {value}")
        entries = [_entry(where, i, raw) for i, raw in enumerate(document.get("accepted") or [])]
        return cls(path, entries)

    def split(self, test: str, findings: Iterable[Finding]) -> tuple[list[Finding], list[Finding]]:
        """(accepted, the others) of a test's findings; INFO findings are never 'accepted' (they fail nothing)."""
        accepted, others = [], []
        for finding in findings:
            matches = (i for i, e in enumerate(self.entries) if e.matches(test, finding))
            index = None if finding.severity is Severity.INFO else next(matches, None)
            if index is None:
                others.append(finding)
            else:
                self.used.add(index)
                accepted.append(finding)
        return accepted, others

    def unused(self) -> list[AcceptedDiff]:
        """Entries no finding of the run matched (the difference is gone, or the test did not run)."""
        return [e for i, e in enumerate(self.entries) if i not in self.used]


def _entry(where: str, index: int, raw: Any) -> AcceptedDiff:
    at = f"{where}: accepted[{index}]"
    if not isinstance(raw, Mapping):
        raise InputError(f"{at} is not a mapping (test, kind, stream, path, control, target, reason)")
    unknown = sorted(set(map(str, raw)) - set(_FIELDS))
    if unknown:
        raise InputError(f"{at}: unknown key(s) {', '.join(unknown)} (known: {', '.join(_FIELDS)})")
    for required in ("test", "kind"):
        if not isinstance(raw.get(required), str) or not raw[required]:
            raise InputError(f"{at}: `{required}` is required (a string)")
    for optional in ("stream", "path", "reason"):
        if raw.get(optional) is not None and not isinstance(raw[optional], str):
            raise InputError(f"{at}: `{optional}` must be a string")
    return AcceptedDiff(
        test=raw["test"],
        kind=raw["kind"],
        stream=raw.get("stream"),
        path=raw.get("path"),
        control=raw.get("control", _MISSING),
        target=raw.get("target", _MISSING),
        reason=raw.get("reason"),
    )


def _pinnable(value: Any) -> bool:
    """Values written into the file (then matched exactly): short scalars and lists, not big examples."""
    return value is not None and len(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str)) <= 200


def write_accepted_diffs(
    path: Path,
    findings: Mapping[str, Sequence[Finding]],
    *,
    connector: str,
    control_version: str,
    target_version: str,
    reasons: Sequence[AcceptedDiff] = (),
) -> int:
    """Write every non-INFO finding of the run (test name -> findings) as accepted; returns how many.

    Reasons already written in the file for the same finding are kept.
    """
    entries = []
    for test, test_findings in sorted(findings.items()):
        for f in test_findings:
            if f.severity is Severity.INFO:
                continue
            entry: dict[str, Any] = {"test": test, "kind": f.kind, "stream": f.stream, "path": f.path}
            for side, value in (("control", f.control), ("target", f.target)):
                if _pinnable(value):
                    entry[side] = _normal(value)
            reason = next((r.reason for r in reasons if r.reason and r.matches(test, f)), None)
            entry["reason"] = reason or f.message
            entries.append(entry)
    document = {
        "connector": connector,
        "control_version": control_version,
        "target_version": target_version,
        "accepted": entries,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        header = f"# Differences accepted for {connector} {control_version} -> {target_version} (live-tests)\n"
        path.write_text(header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120), "utf-8")
    return len(entries)
