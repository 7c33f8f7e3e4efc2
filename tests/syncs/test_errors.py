"""Each CRM's errors map to how we recover: one pure function per CRM, one table each."""

from __future__ import annotations

import json

import pytest

from integration_signals.syncs.exceptions import (
    BatchRejected,
    DailyLimitReached,
    FatalSyncError,
    MissingFields,
    RetriableError,
    SessionExpired,
)
from integration_signals.syncs.hubspot.client import classify as classify_hubspot
from integration_signals.syncs.salesforce.client import classify as classify_salesforce
from tests.fakes.hubspot import _validation_error


def sf(code: str, message: str) -> list[dict[str, str]]:
    return [{"message": message, "errorCode": code}]


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind", "retry_after"),
    [
        (401, sf("INVALID_SESSION_ID", "Session expired or invalid"), {}, SessionExpired, None),
        (
            403,
            sf("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
            {},
            DailyLimitReached,
            None,
        ),
        (
            403,
            sf("REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."),
            {},
            RetriableError,
            None,
        ),
        (503, "Service Unavailable", {"Retry-After": "3"}, RetriableError, 3.0),
        (429, [], {}, RetriableError, None),
        (500, sf("UNKNOWN_EXCEPTION", "An unexpected error occurred"), {}, RetriableError, None),
        (
            400,
            sf("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record"),
            {},
            RetriableError,
            None,
        ),
        (
            400,
            sf("INVALID_FIELD", "No such column 'Foo__c' on sobject of type Account"),
            {},
            MissingFields,
            None,
        ),
        (400, sf("MALFORMED_ID", "id value of incorrect type"), {}, BatchRejected, None),
        (403, sf("INSUFFICIENT_ACCESS", "insufficient access rights"), {}, FatalSyncError, None),
        (404, sf("NOT_FOUND", "The requested resource does not exist"), {}, FatalSyncError, None),
    ],
    ids=[
        "401-session-expired",
        "403-daily-total-requests",
        "403-concurrent-long-requests",
        "503-retry-after",
        "429",
        "500",
        "lock-row",
        "invalid-field",
        "malformed-id",
        "403-permissions",
        "404",
    ],
)
def test_salesforce_errors(status, body, headers, kind, retry_after):
    error = classify_salesforce(status, body, headers)
    assert type(error) is kind
    assert error.destination == "salesforce" and error.status == status
    if isinstance(error, RetriableError):
        assert error.retry_after == retry_after
    if isinstance(error, MissingFields):
        assert error.fields == ["Foo__c"] and "sf project deploy" in error.message


def hs429(policy: str) -> str:
    return json.dumps(
        {"status": "error", "message": "limit", "errorType": "RATE_LIMIT", "policyName": policy}
    )


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind", "retry_after"),
    [
        (429, hs429("TEN_SECONDLY_ROLLING"), {"Retry-After": "2"}, RetriableError, 2.0),
        (
            429,
            hs429("TEN_SECONDLY_ROLLING"),
            {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"},
            RetriableError,
            10.0,
        ),
        (429, hs429("TEN_SECONDLY_ROLLING"), {}, RetriableError, None),
        (429, hs429("DAILY"), {}, DailyLimitReached, None),
        (502, b"<html>bad gateway</html>", {}, RetriableError, None),
        (503, b"{}", {"Retry-After": "1"}, RetriableError, 1.0),
        (423, b"{}", {}, RetriableError, 2.0),
        (401, json.dumps({"category": "INVALID_AUTHENTICATION"}), {}, SessionExpired, None),
        (403, json.dumps({"category": "MISSING_SCOPES"}), {}, FatalSyncError, None),
        (
            400,
            json.dumps(
                _validation_error("integration_health_score", "PROPERTY_DOESNT_EXIST", "nope")
            ),
            {},
            MissingFields,
            None,
        ),
        (
            400,
            json.dumps(_validation_error("integration_health_band", "INVALID_OPTION", "bad")),
            {},
            BatchRejected,
            None,
        ),
    ],
    ids=[
        "429-retry-after",
        "429-rate-headers",
        "429-nothing",
        "429-daily",
        "502",
        "503-retry-after",
        "423-locked",
        "401",
        "403-scopes",
        "400-property-doesnt-exist",
        "400-invalid-option",
    ],
)
def test_hubspot_errors(status, body, headers, kind, retry_after):
    error = classify_hubspot(status, body, headers)
    assert type(error) is kind
    assert error.destination == "hubspot" and error.status == status
    if isinstance(error, RetriableError):
        assert error.retry_after == retry_after
    if isinstance(error, MissingFields):
        assert error.fields == ["integration_health_score"]
        assert "signals provision hubspot" in error.message
    if isinstance(error, DailyLimitReached):
        assert "midnight" in error.resume_after


def test_property_doesnt_exist_is_found_in_the_embedded_message_alone():
    body = _validation_error(
        "expansion_ready", "PROPERTY_DOESNT_EXIST", 'Property "x" does not exist'
    )
    del body["errors"]
    error = classify_hubspot(400, json.dumps(body), {})
    assert isinstance(error, MissingFields) and error.fields == ["expansion_ready"]
