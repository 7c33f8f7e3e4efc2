"""Account import: fields, traits, updates in place, bad rows quarantined; resolving names."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from integration_signals.store.accounts import import_accounts, normalize_domain, resolve_account
from integration_signals.store.models import Account, Quarantine

CSV = (
    "account_id,name,domain,segment,plan,mrr,industry,employees,created_at,renewal_date,"
    "api_limit_daily,csm,owner,salesforce_id,hubspot_id,renewed,seats,region\n"
    "acme,Acme Corp,https://www.acme.com/,Enterprise,enterprise,8500,manufacturing,2400,"
    "2024-05-01,2027-02-01,200000,U123,alex@example.com,001A,9001,true,340,emea\n"
    'beta,Beta Labs,beta.io,SMB,starter,"$1,200",software,12,2026-10-01T00:00:00Z,,5000,,,,,,12,amer\n'
    "gamma,Gamma,gamma.dev,galactic,starter,10,software,1,2026-10-01,,,,,,,,3,apac\n"
    "delta,Delta,delta.dev,smb,starter,10,software,1,2026-10-01,,,,,,,,3,apac,extra\n"
)


def _accounts(engine: Engine) -> dict[str, dict]:
    with engine.connect() as conn:
        return {r.account_id: dict(r._mapping) for r in conn.execute(select(Account))}


def test_import_reads_fields_traits_and_quarantines_bad_rows(engine: Engine, tmp_path: Path):
    path = tmp_path / "accounts.csv"
    path.write_text(CSV)
    report = import_accounts(engine, path).as_json()
    assert (report["imported"], report["created"], report["quarantined"]) == (2, 2, 2)
    assert "segment 'galactic'" in report["problems"][0]["reason"]
    assert "19 columns where the header has 18" in report["problems"][1]["reason"]
    accounts = _accounts(engine)
    acme = accounts["acme"]
    assert acme["segment"] == "enterprise"
    assert acme["mrr"] == 8500.0 and acme["employees"] == 2400
    assert acme["renewed"] is True
    assert acme["created_at"] == datetime(2024, 5, 1, tzinfo=UTC)
    assert acme["traits"] == {"seats": 340, "region": "emea"}
    assert accounts["beta"]["mrr"] == 1200.0 and accounts["beta"]["segment"] == "smb"
    with engine.connect() as conn:
        q = conn.execute(select(Quarantine).order_by(Quarantine.line_no)).first()._mapping
    assert q["line_no"] == 4 and q["source"] == "accounts:accounts.csv"


def test_reimport_updates_in_place_and_fills_stubs(engine: Engine, tmp_path: Path):
    from integration_signals.config import load_config
    from integration_signals.store.ingest import Ingestor, read_objects

    event = {
        "event_id": "x1",
        "type": "integration.installed",
        "occurred_at": "2026-11-01T00:00:00Z",
        "account_id": "acme",
        "integration": "zendesk",
    }
    Ingestor(engine, load_config(None), now=datetime(2026, 11, 2, tzinfo=UTC)).ingest(
        read_objects([event]), source="t"
    )
    assert _accounts(engine)["acme"]["is_stub"] is True
    path = tmp_path / "a.json"
    path.write_text('[{"account_id": "acme", "name": "Acme Corp", "mrr": 100}]')
    first = import_accounts(engine, path).as_json()
    path.write_text('[{"account_id": "acme", "mrr": 250}]')
    second = import_accounts(engine, path).as_json()
    assert (first["created"], second["updated"]) == (1, 1)
    acme = _accounts(engine)["acme"]
    assert (acme["name"], acme["mrr"], acme["is_stub"]) == ("Acme Corp", 250.0, False)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://www.acme.com/", "acme.com"),
        ("ACME.COM", "acme.com"),
        ("www.acme.com", "acme.com"),
        ("http://acme.com:8080/x?y", "acme.com"),
        ("", None),
        (None, None),
    ],
)
def test_domains_are_normalised(raw: str | None, expected: str | None):
    assert normalize_domain(raw) == expected


def test_resolve_by_id_name_domain_then_fuzzy(engine: Engine, tmp_path: Path):
    path = tmp_path / "a.json"
    path.write_text(
        '[{"account_id": "acme", "name": "Acme Corp", "domain": "acme.com"},'
        ' {"account_id": "acme-eu", "name": "Acme Europe", "domain": "acme.eu"},'
        ' {"account_id": "zen", "name": "Zenith Labs", "domain": "zenith.io"}]'
    )
    import_accounts(engine, path)
    assert resolve_account(engine, "acme").matched_by == "id"
    assert resolve_account(engine, "acme corp").account.account_id == "acme"
    assert resolve_account(engine, "https://www.Zenith.io/").matched_by == "domain"
    fuzzy = resolve_account(engine, "zenith lab")
    assert (fuzzy.matched_by, fuzzy.account.account_id) == ("fuzzy", "zen")
    none = resolve_account(engine, "' OR 1=1; DROP TABLE accounts; --")
    assert none.accounts == []
    assert resolve_account(engine, "acme").account is not None  # the table is still there
    scoped = resolve_account(engine, "acme", allowed={"zen"})
    assert scoped.accounts == []
