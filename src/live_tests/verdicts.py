"""What a test's findings mean, and what a session's test outcomes mean: the suite's two verdict rules.

`decide_test` decides one test from its findings (only breaking ones fail it; every other
difference is listed as "passed with findings"), whether it is a diagnostic test, the evaluation
mode and whether its control side failed. `decide_session`
decides the session from every test's outcome and whether all the tests ran. The suite, the
reports and the terminal summary all use these two, and nothing else decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    FAILED = "failed"
    ERROR = "error"
    INCONCLUSIVE = "inconclusive"  # the control failed too: nothing to compare the target with
    PASSED_WITH_FINDINGS = "passed with findings"
    PASSED = "passed"
    SKIPPED = "skipped"

    @property
    def rank(self) -> int:
        """Sort order in reports: failures first."""
        return list(Outcome).index(self)

    @property
    def css(self) -> str:
        return self.value.replace(" ", "-")


class EvaluationMode(StrEnum):
    STRICT = "strict"  # failures make the run fail
    DIAGNOSTIC = "diagnostic"  # diagnostic tests report their findings, they do not fail on them


# Severity values of live_tests.compare.Severity (strings: this module imports nothing heavy).
_BREAKING, _INFO = "breaking", "info"
# Not a compare severity: a target-only record or stream the catalog allows. Listed, never failing.
ADDED = "added"


@dataclass(frozen=True)
class TestVerdict:
    """One test's outcome and the counts it was decided on."""

    __test__ = False

    outcome: Outcome
    differences: int  # findings that are not INFO and not accepted
    failing: int  # differences that fail the test under its rule (before diagnostic mode)
    tolerated: bool  # failing differences let through by diagnostic mode
    accepted: int = 0  # findings matched by the accepted-differences file


def is_difference(severity: str) -> bool:
    return str(severity) != _INFO


def fails(severity: str) -> bool:
    """Only a breaking difference fails a test; every other one is listed ("passed with findings")."""
    return str(severity) == _BREAKING


def decide_test(
    severities: Iterable[str],
    *,
    diagnostic_test: bool = False,
    mode: EvaluationMode = EvaluationMode.STRICT,
    control_failed: bool = False,
    accepted: int = 0,
) -> TestVerdict:
    """The outcome of a test whose (not accepted) findings have these severities.

    A test whose control failed is INCONCLUSIVE whatever the target did: there is no baseline.
    """
    severities = [str(s) for s in severities]
    differences = [s for s in severities if is_difference(s)]
    failing = [s for s in differences if fails(s)]
    tolerated = bool(failing) and diagnostic_test and mode is EvaluationMode.DIAGNOSTIC
    if control_failed:
        outcome = Outcome.INCONCLUSIVE
    elif failing and not tolerated:
        outcome = Outcome.FAILED
    elif differences or accepted:
        outcome = Outcome.PASSED_WITH_FINDINGS
    else:
        outcome = Outcome.PASSED
    return TestVerdict(outcome, len(differences), len(failing), tolerated, accepted)


@dataclass(frozen=True)
class SessionVerdict:
    """The session's verdict: `word` is what report.json's `verdict` says."""

    word: str  # "failed", "passed", "inconclusive", "no tests ran", "interrupted"
    blocking: bool  # whether the run should fail (strict mode and a failure)
    text: str  # for people, e.g. "interrupted (3 of 26 ran)"

    @property
    def passed(self) -> bool:
        return self.word == "passed"


def decide_session(
    outcomes: Iterable[Outcome],
    *,
    mode: EvaluationMode = EvaluationMode.STRICT,
    interrupted: bool = False,
    expected: int | None = None,
) -> SessionVerdict:
    """The session's verdict from its tests' outcomes.

    Never "passed" when no test ran, when the session was interrupted, or when the only thing a
    test could say was "inconclusive" or "skipped"; `expected` is how many tests were collected.
    """
    outcomes = list(outcomes)
    ran = [o for o in outcomes if o is not Outcome.SKIPPED]
    failed = any(o in (Outcome.FAILED, Outcome.ERROR) for o in outcomes)
    total = max(expected or 0, len(outcomes))
    # Fewer results than tests collected (stopped by -x, a crash, a signal): not a whole run.
    interrupted = interrupted or len(outcomes) < total
    if failed:
        word, text = "failed", "failed"
        if interrupted:
            text = f"failed, then interrupted ({len(outcomes)} of {total} ran)"
    elif interrupted:
        word, text = "interrupted", f"interrupted ({len(outcomes)} of {total} ran)"
    elif not ran:
        word = "no tests ran"
        text = "no tests ran" if not outcomes else f"no tests ran ({len(outcomes)} skipped)"
    elif any(o is Outcome.INCONCLUSIVE for o in outcomes):
        word = "inconclusive"
        text = f"inconclusive ({sum(o is Outcome.INCONCLUSIVE for o in outcomes)} test(s) could not compare)"
    else:
        word, text = "passed", "passed"
    return SessionVerdict(word, failed and mode is EvaluationMode.STRICT, text)
