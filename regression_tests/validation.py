"""Validation of the target alone: its spec, its secrets marking and its discovered catalog.

Each check returns a `Validation`: the same shape as a comparison result (findings, a summary,
diff files), so tests and reports handle both alike. Any finding that is not INFO is a problem.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft7Validator
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for

from live_tests.compare import Finding, Severity
from live_tests.compare.diff import write_summary_files
from live_tests.secrets import looks_secret

_COMBINATORS = ("oneOf", "anyOf", "allOf")
_SUMMARY_FINDINGS = 50


@dataclass
class Validation:
    """Findings of a check on one execution (the target's)."""

    title: str
    subject: str  # what was checked, e.g. "source-demo 2.0.0 discover"
    findings: list[Finding] = field(default_factory=list)
    overview: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is not Severity.INFO]

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def has_differences(self) -> bool:
        return bool(self.problems)

    def add(self, kind: str, message: str, **details: Any) -> None:
        self.findings.append(Finding(kind, Severity.BREAKING, message, **details))

    def note(self, kind: str, message: str, **details: Any) -> None:
        self.findings.append(Finding(kind, Severity.INFO, message, **details))

    def summary_text(self) -> str:
        verdict = "PASSED" if self.passed else f"FAILED ({len(self.problems)} problems)"
        lines = [f"{self.title}: {verdict}", f"checked: {self.subject}"]
        if self.overview:
            lines += ["", *self.overview]
        notes = [f for f in self.findings if f.severity is Severity.INFO]
        for heading, group in (("Problems", self.problems), ("Notes", notes)):
            if group:
                lines += ["", f"{heading} ({len(group)}):"]
                lines += [f"  - {f.message}" for f in group[:_SUMMARY_FINDINGS]]
                if len(group) > _SUMMARY_FINDINGS:
                    lines.append(f"  … and {len(group) - _SUMMARY_FINDINGS} more (see findings.json)")
        if not self.findings:
            lines += ["", "No problems."]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "validation": self.title,
            "subject": self.subject,
            "passed": self.passed,
            "findings": [f.to_dict() for f in self.findings],
        }

    def write_diff_files(self, directory: Path) -> list[Path]:
        return write_summary_files(directory, self.summary_text(), self.to_dict())


def validator_class(schema: Mapping[str, Any]) -> type:
    return validator_for(schema, default=Draft7Validator)


def schema_problem(schema: Any) -> str | None:
    """Why `schema` is not a valid JSON schema (None when it is)."""
    if not isinstance(schema, Mapping):
        return f"not a JSON object but {type(schema).__name__}"
    try:
        validator_class(schema).check_schema(schema)
    except SchemaError as exc:
        where = exc.json_path if exc.json_path != "$" else "the root"
        return f"{exc.message} (at {where})"
    return None


def validate_spec(spec: Any, config: Mapping[str, Any] | None, subject: str) -> Validation:
    """The spec's connectionSpecification is a valid JSON schema and the config validates against it."""
    result = Validation("Spec is a valid JSON schema and accepts the config", subject)
    schema = spec.get("connectionSpecification") if isinstance(spec, Mapping) else None
    if schema is None:
        result.add("spec_missing", "no SPEC message with a connectionSpecification")
        return result
    problem = schema_problem(schema)
    if problem:
        result.add("spec_invalid_json_schema", f"connectionSpecification is not a valid JSON schema: {problem}")
        return result
    validator_cls = validator_class(schema)
    result.overview.append(f"JSON schema dialect: {validator_cls.__name__}")
    if config is None:
        result.note("config_not_given", "no --config-path: the config was not validated")
        return result
    for error in sorted(validator_cls(schema).iter_errors(config), key=lambda e: list(e.absolute_path)):
        result.add(
            "config_invalid",
            f"config {error.json_path}: {_short(error.message)}",
            path=error.json_path,
            control=error.validator,
        )
    return result


# --- secrets marking ---------------------------------------------------------------------------


def _types(schema: Mapping[str, Any]) -> set[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    return set(declared) if isinstance(declared, list) else set()


def spec_properties(schema: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Mapping[str, Any]]]:
    """(path, property schema) of every property, at any depth; oneOf/anyOf/allOf/items are transparent."""
    if not isinstance(schema, Mapping):
        return
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        for name, sub in properties.items():
            if isinstance(sub, Mapping):
                yield (*path, str(name)), sub
                yield from spec_properties(sub, (*path, str(name)))
    for key in _COMBINATORS:
        for sub in schema.get(key) or ():
            yield from spec_properties(sub, path)
    yield from spec_properties(schema.get("items"), path)


def validate_secrets_marked(spec: Any, subject: str) -> Validation:
    """Properties whose names say they hold a secret are marked `airbyte_secret: true`."""
    result = Validation("Secrets are marked airbyte_secret", subject)
    schema = spec.get("connectionSpecification") if isinstance(spec, Mapping) else None
    if not isinstance(schema, Mapping):
        result.add("spec_missing", "no SPEC message with a connectionSpecification")
        return result
    marked = 0
    seen: set[tuple[str, ...]] = set()
    for path, prop in spec_properties(schema):
        if path in seen:
            continue
        seen.add(path)
        if prop.get("airbyte_secret") is True:
            marked += 1
            continue
        types = _types(prop)
        free_text = (not types or "string" in types) and "enum" not in prop and "const" not in prop
        if free_text and looks_secret(path[-1]):
            dotted = ".".join(path)
            result.add(
                "secret_not_marked",
                f"`{dotted}` looks like a secret but is not marked airbyte_secret: its value would show in logs",
                path=dotted,
            )
    result.overview.append(f"properties: {len(seen)}, marked airbyte_secret: {marked}")
    return result


# --- discovered catalog ------------------------------------------------------------------------


def schema_has_path(schema: Any, path: Sequence[str]) -> bool:
    """True when the JSON schema declares the nested property `path` (through combinators too)."""
    nodes = [schema]
    for name in path:
        found = []
        for node in nodes:
            found += [props[name] for props in _properties_of(node) if isinstance(props.get(name), Mapping)]
        if not found:
            return False
        nodes = found
    return True


def _properties_of(schema: Any) -> Iterator[Mapping[str, Any]]:
    if not isinstance(schema, Mapping):
        return
    if isinstance(schema.get("properties"), Mapping):
        yield schema["properties"]
    for key in _COMBINATORS:
        for sub in schema.get(key) or ():
            yield from _properties_of(sub)


def _paths(value: Any) -> list[list[str]]:
    """A primary key ([["id"]], [["account", "id"], ["date"]]) as field paths."""
    if not isinstance(value, list):
        return []
    # A bare string is one top-level field (the comparisons read keys the same way).
    return [[p] if isinstance(p, str) else [str(x) for x in p] for p in value if isinstance(p, list | str) and p]


def validate_catalog(catalog: Any, subject: str) -> Validation:
    """Unique stream names, valid JSON schemas, primary keys and cursor fields declared in the schemas."""
    result = Validation("Discovered catalog is valid", subject)
    streams = catalog.get("streams") if isinstance(catalog, Mapping) else None
    if not isinstance(streams, list):
        result.add("catalog_missing", "no CATALOG message with a list of streams")
        return result
    names = [s.get("name") for s in streams if isinstance(s, Mapping)]
    result.overview.append(f"streams: {len(names)}")
    for name in sorted({n for n in names if names.count(n) > 1}, key=str):
        result.add("duplicate_stream_name", f"stream name `{name}` appears {names.count(name)} times", stream=name)
    for stream in streams:
        if not isinstance(stream, Mapping) or not stream.get("name"):
            result.add("stream_without_name", f"a stream has no name: {_short(orjson.dumps(stream).decode())}")
            continue
        name = stream["name"]
        schema = stream.get("json_schema")
        problem = schema_problem(schema)
        if problem:
            message = f"`{name}`: json_schema is not a valid JSON schema: {problem}"
            result.add("invalid_json_schema", message, stream=name)
            continue
        for path in _paths(stream.get("source_defined_primary_key")):
            if not schema_has_path(schema, path):
                result.add(
                    "primary_key_not_in_schema",
                    f"`{name}`: primary key field `{'.'.join(path)}` is not in the stream's schema",
                    stream=name, path=".".join(path),
                )  # fmt: skip
        cursor = stream.get("default_cursor_field")
        if isinstance(cursor, list) and cursor and not schema_has_path(schema, [str(p) for p in cursor]):
            result.add(
                "cursor_field_not_in_schema",
                f"`{name}`: default cursor field `{'.'.join(map(str, cursor))}` is not in the stream's schema",
                stream=name, path=".".join(map(str, cursor)),
            )  # fmt: skip
    return result


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
