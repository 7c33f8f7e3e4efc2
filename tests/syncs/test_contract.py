"""The shared contract: one value per CRM record, the plan against the ledger, the band
guard, batch isolation and the rate limiter (pure code, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integration_signals.config import load_config
from integration_signals.syncs.contract import (
    AccountValues,
    RecordChange,
    RecordResult,
    make_plan,
    record_values,
    write_isolating,
)
from integration_signals.syncs.exceptions import BatchRejected, RetriableError
from integration_signals.syncs.retry import Backoff, SlidingWindowLimiter

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def acct(account_id: str, score: int, band: str, mrr: float | None = 1000, **kw) -> AccountValues:
    return AccountValues(account_id=account_id, score=score, band=band, mrr=mrr, scored_at=T0, **kw)


def test_one_account_gives_the_spec_values_as_canonical_strings():
    values = record_values(
        [
            acct(
                "acme",
                88,
                "healthy",
                segments=("expansion-ready",),
                active_integrations=7,
                reason="Zendesk: 85% sync success (15 of 100 failed this week)",
            )
        ]
    )
    assert values == {
        "score": "88",
        "band": "healthy",
        "segments": "expansion-ready",
        "expansion_ready": "true",
        "active_integrations": "7",
        "reason": "Zendesk: 85% sync success (15 of 100 failed this week)",
        "scored_at": "2026-11-20T08:00:00Z",
    }


def test_workspaces_of_one_customer_get_one_value_per_record():
    values = record_values(
        [
            acct(
                "ws-big",
                90,
                "healthy",
                mrr=9000,
                segments=("expansion-ready",),
                active_integrations=5,
            ),
            acct(
                "ws-small",
                40,
                "at_risk",
                mrr=1000,
                segments=("at-risk",),
                active_integrations=2,
                reason="Zendesk failing",
            ),
        ]
    )
    assert values["score"] == "85"  # (90*9000 + 40*1000) / 10000 = 85
    assert values["band"] == "at_risk"  # the worst band
    assert values["segments"] == "at-risk;expansion-ready"  # the union
    assert values["expansion_ready"] == "true"
    assert values["active_integrations"] == "7"  # the sum
    assert values["reason"] == "Zendesk failing"  # the weakest account's reason


def test_without_mrr_the_score_is_the_plain_mean_and_reason_fits_255_chars():
    values = record_values(
        [acct("a", 70, "watch", mrr=None, reason="x" * 400), acct("b", 81, "healthy", mrr=0)]
    )
    assert values["score"] == "76"  # 75.5 rounds half up
    assert len(values["reason"]) == 255
    assert values["expansion_ready"] == "false" and values["segments"] == ""


def _records(n: int, band: str = "healthy") -> dict:
    return {f"r{i}": ((f"a{i}",), {"band": band, "score": str(80 + i % 5)}) for i in range(n)}


def test_unchanged_records_are_not_planned_and_full_ignores_the_ledger():
    records = _records(10)
    ledger = {rid: dict(values) for rid, (_a, values) in records.items()}
    ledger["r3"] = {**ledger["r3"], "score": "1"}
    plan = make_plan(records, ledger, band_field="band")
    assert plan.planned == 1 and plan.unchanged == 9
    assert plan.changes[0].changes == {"score": ("1", "83")}
    assert make_plan(records, ledger, band_field="band", full=True).planned == 10


@pytest.mark.parametrize(
    ("changed", "known", "threshold", "stops"),
    [
        (0, 0, 0.2, False),  # first sync: nothing in the ledger, exempt
        (2, 10, 0.2, False),  # exactly 20% is allowed
        (3, 10, 0.2, True),  # more than 20% stops
        (10, 10, 1.0, False),
    ],
    ids=["first-sync-exempt", "at-threshold", "above-threshold", "guard-off"],
)
def test_band_guard(changed: int, known: int, threshold: float, stops: bool):
    records = _records(10, band="at_risk")
    ledger = {
        f"r{i}": {"band": "at_risk" if i >= changed else "healthy", "score": "0"}
        for i in range(known)
    }
    reason = make_plan(records, ledger, band_field="band").band_guard(threshold)
    assert (reason is not None) == stops
    if stops:
        assert f"{changed} of {known} records" in reason and "--force" in reason


@given(
    st.dictionaries(
        st.text("abc", min_size=1, max_size=3),
        st.dictionaries(st.sampled_from(["score", "band", "reason"]), st.text(max_size=3)),
        max_size=8,
    ),
    st.dictionaries(
        st.text("abc", min_size=1, max_size=3),
        st.dictionaries(st.sampled_from(["score", "band", "reason"]), st.text(max_size=3)),
        max_size=8,
    ),
)
def test_after_confirming_a_plan_nothing_is_left_to_write(computed, ledger):
    records = {rid: ((rid,), values) for rid, values in computed.items()}
    plan = make_plan(records, ledger, band_field="band")
    confirmed = {rid: dict(v) for rid, v in ledger.items()}
    for change in plan.changes:
        confirmed.setdefault(change.record_id, {}).update(change.new_values)
    again = make_plan(records, confirmed, band_field="band")
    assert again.planned == 0 and again.unchanged == len(records)


def test_a_refused_record_fails_alone_when_the_crm_rejects_its_whole_request():
    batch = [RecordChange(f"r{i}", (f"a{i}",), {"score": (None, str(i))}) for i in range(7)]
    calls: list[int] = []

    def write(part):
        calls.append(len(part))
        if any(c.record_id == "r4" for c in part):
            raise BatchRejected("INVALID_OPTION: bad value")
        return [RecordResult(c.record_id, True) for c in part]

    results = write_isolating(batch, write)
    assert [r.record_id for r in results] == [f"r{i}" for i in range(7)]
    assert [r.ok for r in results] == [True] * 4 + [False] + [True] * 2
    assert results[4].error == "INVALID_OPTION: bad value"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_limiter_never_lets_more_than_the_limit_into_any_window():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(10, 1.0, clock=clock, sleep=clock.sleep)
    stamps = []
    for _ in range(55):
        limiter.acquire()
        stamps.append(clock.now)
        clock.now += 0.01  # the request takes 10 ms
        limiter.done()
    for i in range(len(stamps) - 10):
        assert stamps[i + 10] - stamps[i] >= 1.0
    assert stamps[-1] < 5 * 1.0 + 55 * 0.01 + 0.2  # and it does not wait longer than needed


def test_backoff_honours_the_vendors_hint_and_gives_up_after_the_attempts():
    waits: list[float] = []
    backoff = Backoff(attempts=4, initial=0.5, cap=3, sleep=waits.append)
    errors = [RetriableError("429", retry_after=7.0), RetriableError("503"), RetriableError("503")]

    def flaky():
        if errors:
            raise errors.pop(0)
        return "ok"

    assert backoff.call(flaky) == "ok"
    assert waits == [7.0, 1.0, 2.0]
    with pytest.raises(RetriableError):
        Backoff(attempts=2, initial=0, cap=0, sleep=waits.append).call(
            lambda: (_ for _ in ()).throw(RetriableError("503"))
        )


def test_shipped_sfdx_metadata_defines_every_default_salesforce_field():
    root = Path(__file__).resolve().parents[2] / "force-app/main/default/objects/Account/fields"
    ns = {"m": "http://soap.sforce.com/2006/04/metadata"}
    shipped = {}
    for path in root.glob("*.field-meta.xml"):
        tree = ElementTree.parse(path).getroot()
        shipped[tree.findtext("m:fullName", namespaces=ns)] = tree.findtext("m:type", namespaces=ns)
    fields = load_config().syncs.salesforce.fields
    assert set(shipped) == set(fields.values())
    assert shipped[fields["score"]] == "Number" and shipped[fields["scored_at"]] == "DateTime"
    assert shipped[fields["expansion_ready"]] == "Checkbox"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("001D000000IqhSL", "001D000000IqhSLIAZ"),
        ("001D000000IqhSLIAZ", "001D000000IqhSLIAZ"),
        ("0013000000Abcde", "0013000000AbcdeAAB"),
    ],
    ids=["15-chars", "already-18", "mixed-case"],
)
def test_salesforce_ids_are_compared_in_their_18_character_form(given: str, expected: str):
    from integration_signals.syncs.salesforce.mapping import record_id

    assert record_id(given) == expected
