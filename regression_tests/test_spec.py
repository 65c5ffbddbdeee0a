"""`spec`: the configuration a user gives the connector."""

from __future__ import annotations

import orjson
import pytest

from live_tests.compare import compare_spec
from live_tests.regression_tests.outcomes import FailOn, judge, require_success
from live_tests.regression_tests.session import ExecutionPair, RegressionSession
from live_tests.regression_tests.validation import validate_secrets_marked, validate_spec


def test_spec_is_compatible(
    request: pytest.FixtureRequest, regression_session: RegressionSession, spec_pair: ExecutionPair
) -> None:
    """Both versions answer `spec`, and a config valid for the control stays valid for the target.

    Fails on breaking changes of the config schema only: a property removed, a new required
    property, a type narrowed, enum values removed, a secret no longer marked `airbyte_secret`.
    Added optional properties and changed descriptions are listed as findings.
    """
    require_success(request, spec_pair)
    comparison = compare_spec(regression_session.query(), spec_pair.control_key, spec_pair.target_key)
    judge(request, comparison, fail_on=FailOn.BREAKING)


def test_spec_is_valid_json_schema_and_accepts_config(
    request: pytest.FixtureRequest, regression_session: RegressionSession, spec_pair: ExecutionPair
) -> None:
    """Target alone: its connectionSpecification is a valid JSON schema, and the given config validates against it."""
    require_success(request, spec_pair)
    spec = regression_session.last_message("spec", "spec", spec_pair.target_key)
    config_path = regression_session.settings.config_path
    config = orjson.loads(config_path.read_bytes()) if config_path else None
    judge(request, validate_spec(spec, config, " ".join(spec_pair.target_key)))


def test_secrets_are_marked(
    request: pytest.FixtureRequest, regression_session: RegressionSession, spec_pair: ExecutionPair
) -> None:
    """Target alone: every property whose name says it holds a secret (password, token, api_key,
    client_secret, …) is marked `airbyte_secret`, so its value is masked in logs and UIs."""
    require_success(request, spec_pair)
    spec = regression_session.last_message("spec", "spec", spec_pair.target_key)
    judge(request, validate_secrets_marked(spec, " ".join(spec_pair.target_key)))
