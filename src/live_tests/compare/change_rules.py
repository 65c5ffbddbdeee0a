"""Classify each spec or catalog change: breaking, compatible (CHANGE) or cosmetic (INFO).

The spec describes an input: a change is breaking when a config valid for control may be
rejected or mishandled by target. The catalog describes an output: a change is breaking when a
destination can no longer rely on what it got before. `RULES` is read top to bottom and the first
rule that matches a change judges it; a change no rule matches is listed as `unclassified_change`
(CHANGE), so nothing is ever dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from live_tests.compare.diff import Finding, Severity, short
from live_tests.compare.document_diff import DocumentChange, DocumentDiff

BREAKING, CHANGE, INFO = Severity.BREAKING, Severity.CHANGE, Severity.INFO


class Document(StrEnum):
    SPEC = "spec"
    CATALOG = "catalog"


class Position(StrEnum):
    KEYWORD = "keyword"  # a key of a schema or document object, e.g. `type`, `title`
    TOP = "top"  # a keyword of the document itself (spec object, stream object)
    PROPERTY = "property"  # a member of `properties`
    ELEMENT = "element"  # an element of an array keyed as listed, e.g. a `oneOf` option


# Documentation and UI only: listed, never failing.
COSMETIC_KEYS = (
    "title", "description", "examples", "documentationUrl", "changelogUrl", "order", "group", "groups",
    "airbyte_hidden", "display_type", "always_show", "pattern_descriptor", "multiline",
    "x-speakeasy-param-sensitive",
)  # fmt: skip
LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")


@dataclass(frozen=True)
class RuleContext:
    """What a rule may need beyond its own change: other changes of the same documents."""

    document: Document
    added_properties: frozenset[tuple[str, str | None, str | None]]  # (scope, schema path, name)
    removed_properties: frozenset[tuple[str, str | None, str | None]]
    newly_required: frozenset[tuple[str, str, str]]  # (scope, schema path, name)
    segments: dict[str, str]  # property name -> its JSON path segment

    @classmethod
    def of(cls, diff: DocumentDiff, document: Document) -> RuleContext:
        def props(change: str) -> frozenset[tuple[str, str | None, str | None]]:
            return frozenset(
                (c.scope, c.schema_path, c.key) for c in diff.changes if c.is_property and c.change == change
            )

        newly_required = frozenset(
            (c.scope, c.parent_path, name)
            for c in diff.changes
            if c.is_keyword and c.key == "required"
            for name in _names(c.target) - _names(c.control)
        )
        return cls(document, props("added"), props("removed"), newly_required, diff.segments)

    def property_path(self, schema_path: str, name: str) -> str:
        return f"{schema_path}.properties{self.segments.get(name, '.' + name)}"


Judge = Callable[[DocumentChange, RuleContext], list[Finding]]


@dataclass(frozen=True)
class Rule:
    documents: tuple[Document, ...]
    position: Position
    keys: tuple[str, ...]
    judge: Judge

    def matches(self, change: DocumentChange, document: Document) -> bool:
        if document not in self.documents:
            return False
        if self.position is Position.PROPERTY:
            return change.is_property
        if self.position is Position.ELEMENT:
            return change.in_array and change.parent_key in self.keys
        in_place = change.is_keyword and (self.position is Position.KEYWORD or change.top_level)
        return in_place and change.key in self.keys


# --- helpers ------------------------------------------------------------------------------


def _finding(
    change: DocumentChange, ctx: RuleContext, kind: str, severity: Severity, text: str, **details: Any
) -> Finding:
    stream = change.scope if ctx.document is Document.CATALOG else None
    details = {"path": change.path, "control": change.control, "target": change.target, **details}
    return Finding(kind, severity, (f"stream `{stream}`: " if stream else "") + text, stream=stream, **details)


def _show(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "[" + ", ".join(value) + "]"
    return "(unset)" if value is None else short(value, 60)


def _json(value: Any) -> str:
    return short(orjson.dumps(value).decode(), 60)


def _describe(change: DocumentChange) -> str:
    if change.change == "added":
        return f"`{change.path}` added: {_show(change.target)}"
    if change.change == "removed":
        return f"`{change.path}` removed (was {_show(change.control)})"
    return f"`{change.path}` changed from {_show(change.control)} to {_show(change.target)}"


def _names(value: Any) -> set[str]:
    return {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()


def _types(value: Any) -> list[str] | None:
    """The JSON types a `type` value lists ([] when unset: any type); None when it is not a type list."""
    if value is None:
        return []
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


# --- judges -------------------------------------------------------------------------------


def unclassified(change: DocumentChange, ctx: RuleContext) -> list[Finding]:
    return [_finding(change, ctx, "unclassified_change", CHANGE, _describe(change))]


def cosmetic(change: DocumentChange, ctx: RuleContext) -> list[Finding]:
    return [_finding(change, ctx, "cosmetic_change", INFO, _describe(change))]


def property_added_or_removed(change: DocumentChange, ctx: RuleContext) -> list[Finding]:
    if change.change == "removed":
        return [_finding(change, ctx, "property_removed", BREAKING, f"property `{change.path}` was removed")]
    if change.change == "changed":
        return unclassified(change, ctx)
    if ctx.document is Document.CATALOG:
        return [_finding(change, ctx, "property_added", CHANGE, f"property `{change.path}` was added")]
    if (change.scope, change.schema_path, change.key) in ctx.newly_required:
        text = f"new required property `{change.path}` (existing configs lack it)"
        return [_finding(change, ctx, "required_property_added", BREAKING, text)]
    return [_finding(change, ctx, "property_added", CHANGE, f"optional property `{change.path}` was added")]


def properties_keyword(change: DocumentChange, ctx: RuleContext) -> list[Finding]:
    """A whole `properties` object added or removed: its properties with it."""
    value = change.control if change.change == "removed" else change.target
    if change.change == "changed" or not isinstance(value, dict) or not value:
        return unclassified(change, ctx)
    names = ", ".join(f"`{n}`" for n in sorted(value))
    if change.change == "removed":
        return [_finding(change, ctx, "property_removed", BREAKING, f"`{change.path}` removed: properties {names}")]
    return [_finding(change, ctx, "property_added", CHANGE, f"`{change.path}` added: properties {names}")]


def required(change: DocumentChange, ctx: RuleContext) -> list[Finding]:
    """Per name: newly required breaks a config (spec); a property added or removed along with its
    `required` entry is reported once, by the property rule."""
    if not all(v is None or isinstance(v, list) for v in (change.control, change.target)):
        return unclassified(change, ctx)
    control, target = _names(change.control), _names(change.target)
    findings = []
    for name in sorted(target - control):
        if (change.scope, change.parent_path, name) in ctx.added_properties:
            continue
        path = ctx.property_path(change.parent_path, name)
        severity = BREAKING if ctx.document is Document.SPEC else CHANGE
        findings.append(
            _finding(
                change, ctx, "property_became_required", severity, f"`{path}` is now required",
                path=path, control=False, target=True,
            )
        )  # fmt: skip
    for name in sorted(control - target):
        if (change.scope, change.parent_path, name) in ctx.removed_properties:
            continue
        path = ctx.property_path(change.parent_path, name)
        findings.append(
            _finding(
                change, ctx, "property_no_longer_required", CHANGE, f"`{path}` is no longer required",
                path=path, control=True, target=False,
            )
        )  # fmt: skip
    return findings


def spec_type(change: DocumentChange, ctx: RuleContext) -> list[Finding]:
    """A config value of a type control accepted must stay accepted (`number` accepts integers)."""
    control, target = _types(change.control), _types(change.target)
    if control is None or target is None:
        return unclassified(change, ctx)
    accepted = set(target) | ({"integer"} if "number" in target else set())
    narrowed = bool(target) and (not control or not set(control) <= accepted)
    word = "narrowed" if narrowed else "widened"
    text = f"`{change.path}` {word} from {_show(control or ['any'])} to {_show(target or ['any'])}"
    return [_finding(change, ctx, f"property_type_{word}", BREAKING if narrowed else CHANGE, text)]


def catalog_type(change: DocumentChange, ctx: RuleContext) -> list[Finding]:
    """A destination types its columns from the schema: only becoming nullable is compatible."""
    control, target = _types(change.control), _types(change.target)
    if control is None or target is None:
        return unclassified(change, ctx)
    c_set, t_set = set(control), set(target)
    shown = f"from {_show(control or ['any'])} to {_show(target or ['any'])}"
    if c_set - {"null"} == t_set - {"null"}:
        if "null" in t_set:
            text = f"`{change.path}` widened {shown} (now nullable)"
            return [_finding(change, ctx, "property_nullability_added", CHANGE, text)]
        return [_finding(change, ctx, "property_nullability_removed", BREAKING, f"`{change.path}` narrowed {shown}")]
    # An unset type is any type.
    narrower = bool(t_set) and (not c_set or t_set < c_set)
    wider = bool(c_set) and (not t_set or t_set > c_set)
    word = "narrowed" if narrower else "widened" if wider else "changed"
    return [_finding(change, ctx, "property_type_changed", BREAKING, f"`{change.path}` {word} {shown}")]


def spec_enum(change: DocumentChange, ctx: RuleContext) -> list[Finding]:
    if change.change == "added":
        text = f"`{change.path}` added: values now restricted to {_show(change.target)}"
        return [_finding(change, ctx, "enum_added", BREAKING, text)]
    if change.change == "removed":
        return [_finding(change, ctx, "enum_removed", CHANGE, f"`{change.path}` removed: any value accepted")]
    if not isinstance(change.control, list) or not isinstance(change.target, list):
        return unclassified(change, ctx)
    removed = [v for v in change.control if v not in change.target]
    added = [v for v in change.target if v not in change.control]
    findings = []
    if removed:
        text = f"`{change.path}` no longer accepts {', '.join(_json(v) for v in removed)}"
        findings.append(_finding(change, ctx, "enum_values_removed", BREAKING, text))
    if added:
        text = f"`{change.path}` also accepts {', '.join(_json(v) for v in added)}"
        findings.append(_finding(change, ctx, "enum_values_added", CHANGE, text))
    return findings


def tightened_unless_removed(change: DocumentChange, ctx: RuleContext) -> list[Finding]:
    """`format`, `pattern`: a new or different constraint may reject configs; none rejects nothing."""
    if change.change == "removed":
        return [_finding(change, ctx, f"{change.key}_relaxed", CHANGE, _describe(change))]
    return [_finding(change, ctx, f"{change.key}_tightened", BREAKING, _describe(change))]


def bound(change: DocumentChange, ctx: RuleContext) -> list[Finding]:
    """Min/max bounds: tighter (added, a higher minimum, a lower maximum) breaks configs."""
    if change.change == "changed":
        numbers = [v for v in (change.control, change.target) if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(numbers) < 2:
            return unclassified(change, ctx)
        higher = numbers[1] > numbers[0]
        tightened = higher if change.key in LOWER_BOUNDS else not higher
    else:
        tightened = change.change == "added"
    kind, severity = ("bound_tightened", BREAKING) if tightened else ("bound_relaxed", CHANGE)
    return [_finding(change, ctx, kind, severity, _describe(change))]


def secret(change: DocumentChange, ctx: RuleContext) -> list[Finding]:
    was, now = change.control is True, change.target is True
    if was and not now:
        text = f"`{change.path}`: no longer marked airbyte_secret (its value may be logged or shown)"
        return [_finding(change, ctx, "secret_unmarked", BREAKING, text)]
    if now and not was:
        return [_finding(change, ctx, "secret_marked", CHANGE, f"`{change.path}`: now marked airbyte_secret")]
    if change.control in (None, False) and change.target in (None, False):
        return [_finding(change, ctx, "equivalent_change", INFO, _describe(change) + " (false is the default)")]
    return unclassified(change, ctx)


def additional_properties(change: DocumentChange, ctx: RuleContext) -> list[Finding]:
    """Openness: unset/true (any extra key) > a schema (extra keys of that shape) > false (none)."""

    def openness(value: Any) -> int | None:
        return 2 if value in (None, True) else 1 if isinstance(value, dict) else 0 if value is False else None

    was, now = openness(change.control), openness(change.target)
    if was is None or now is None:
        return unclassified(change, ctx)
    if now < was:
        return [_finding(change, ctx, "additional_properties_restricted", BREAKING, _describe(change))]
    if now > was:
        return [_finding(change, ctx, "additional_properties_allowed", CHANGE, _describe(change))]
    return [_finding(change, ctx, "equivalent_change", INFO, _describe(change) + " (true is the default)")]


def schema_option(change: DocumentChange, ctx: RuleContext) -> list[Finding]:
    """A `oneOf`/`anyOf` option removed: configs using it are rejected."""
    if change.change == "removed":
        return [_finding(change, ctx, "one_of_option_removed", BREAKING, f"option `{change.path}` was removed")]
    if change.change == "added":
        return [_finding(change, ctx, "one_of_option_added", CHANGE, f"option `{change.path}` was added")]
    return unclassified(change, ctx)


def sync_modes(change: DocumentChange, ctx: RuleContext) -> list[Finding]:
    kind = "sync_modes" if change.key == "supported_sync_modes" else "destination_sync_modes"
    what = kind.replace("_", " ")
    control, target = _names(change.control), _names(change.target)
    findings = []
    if removed := sorted(control - target):
        text = f"{what} no longer supported: {', '.join(removed)}"
        findings.append(_finding(change, ctx, f"{kind}_removed", BREAKING, text))
    if added := sorted(target - control):
        findings.append(_finding(change, ctx, f"{kind}_added", CHANGE, f"{what} added: {', '.join(added)}"))
    return findings or unclassified(change, ctx)


def always(kind: str, severity: Severity) -> Judge:
    def judge(change: DocumentChange, ctx: RuleContext) -> list[Finding]:
        return [_finding(change, ctx, kind, severity, _describe(change))]

    return judge


SPEC, CATALOG, BOTH = (Document.SPEC,), (Document.CATALOG,), (Document.SPEC, Document.CATALOG)
KEYWORD, TOP, PROPERTY, ELEMENT = Position.KEYWORD, Position.TOP, Position.PROPERTY, Position.ELEMENT

RULES: tuple[Rule, ...] = (
    # documents position keys                                 judge
    Rule(BOTH,    KEYWORD, COSMETIC_KEYS,                        cosmetic),
    Rule(BOTH,    PROPERTY, (),                                  property_added_or_removed),
    Rule(BOTH,    KEYWORD, ("properties",),                      properties_keyword),
    Rule(BOTH,    KEYWORD, ("required",),                        required),
    Rule(SPEC,    KEYWORD, ("type",),                            spec_type),
    Rule(CATALOG, KEYWORD, ("type",),                            catalog_type),
    Rule(SPEC,    KEYWORD, ("enum",),                            spec_enum),
    Rule(SPEC,    KEYWORD, ("format", "pattern"),                tightened_unless_removed),
    Rule(SPEC,    KEYWORD, LOWER_BOUNDS + UPPER_BOUNDS,          bound),
    Rule(SPEC,    KEYWORD, ("airbyte_secret",),                  secret),
    Rule(BOTH,    KEYWORD, ("additionalProperties",),            additional_properties),
    Rule(SPEC,    ELEMENT, ("oneOf", "anyOf"),                   schema_option),
    Rule(BOTH,    TOP,     ("supportedDestinationSyncModes",),   sync_modes),
    Rule(CATALOG, TOP,     ("supported_sync_modes",),            sync_modes),
    Rule(CATALOG, TOP,     ("source_defined_primary_key",),      always("primary_key_changed", BREAKING)),
    Rule(CATALOG, TOP,     ("default_cursor_field",),            always("cursor_field_changed", BREAKING)),
    Rule(CATALOG, TOP,     ("source_defined_cursor",),           always("source_defined_cursor_changed", BREAKING)),
    # Whether an interrupted full refresh resumes from its state or starts over: not what a destination reads.
    Rule(CATALOG, TOP,     ("is_resumable",),                    always("resumability_changed", CHANGE)),
)  # fmt: skip


def classify(diff: DocumentDiff, document: Document) -> list[Finding]:
    """One or more findings per change (a `required` or enum change may name several values)."""
    ctx = RuleContext.of(diff, document)
    findings: list[Finding] = []
    for change in diff.changes:
        rule = next((r for r in RULES if r.matches(change, document)), None)
        findings += rule.judge(change, ctx) if rule else unclassified(change, ctx)
    return findings
