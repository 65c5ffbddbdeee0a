"""`spec`: the configuration a user gives the connector."""

from __future__ import annotations

from live_tests.regression_tests.outcomes import Judge
from live_tests.regression_tests.runs import SpecRun


def test_spec_is_compatible(judge: Judge, spec: SpecRun) -> None:
    """Both versions answer `spec`, and a config valid for the control stays valid for the target.

    Fails on breaking changes of the config schema only: a property removed, a new required
    property, a type narrowed, enum values removed, a secret no longer marked `airbyte_secret`.
    Added optional properties and changed descriptions are listed as findings.
    """
    judge(spec.compatibility())


def test_spec_is_valid_json_schema_and_accepts_config(judge: Judge, spec: SpecRun) -> None:
    """Target alone: its connectionSpecification is a valid JSON schema, and the given config validates against it."""
    judge(spec.validity())


def test_secrets_are_marked(judge: Judge, spec: SpecRun) -> None:
    """Target alone: every property whose name says it holds a secret (password, token, api_key,
    client_secret, …) is marked `airbyte_secret`, so its value is masked in logs and UIs."""
    judge(spec.secrets_marked())
