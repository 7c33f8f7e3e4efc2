"""A third CRM is one folder: TinyCRM (defined in ``tests/syncs/third_crm.py``, its fake
API on 127.0.0.1) registers itself and syncs end to end, is scheduled when its
credentials are set, has its secret redacted and its ``[syncs.tinycrm]`` table
validated, with no edit outside its own files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import update

from integration_signals.config import ConfigError, Settings, load_config
from integration_signals.schedules.jobs import build_jobs
from integration_signals.store import models
from integration_signals.syncs import registry
from integration_signals.syncs.run import run_sync
from tests.syncs import third_crm
from tests.syncs.conftest import NOW, seed_scores
from tests.syncs.third_crm import BATCH, SEARCH, FakeTinyCrm

TINY_TOKEN = "tiny-0123456789-SECRET"


@pytest.fixture
def tinycrm() -> Iterator[FakeTinyCrm]:
    registry.register(third_crm.DESTINATION)
    fake = FakeTinyCrm(token=TINY_TOKEN)
    fake.start()
    yield fake
    fake.stop()
    registry.unregister("tinycrm")


def tiny_settings(fake: FakeTinyCrm, token: str = TINY_TOKEN) -> Settings:
    return Settings(tinycrm_api_url=fake.url, tinycrm_token=SecretStr(token))


def seed_three(engine, fake: FakeTinyCrm) -> None:
    """acme carries its TinyCRM id in traits, globex is found by domain, initech has
    no record anywhere."""
    fake.add("T-ACME")
    fake.add("T-GLOBEX", domain="globex.com")
    seed_scores(
        engine,
        [
            {"account_id": "acme", "score": 81, "band": "healthy", "reason": "8 syncs a day"},
            {"account_id": "globex", "domain": "https://www.Globex.com/", "score": 40},
            {"account_id": "initech", "domain": "initech.example", "score": 55},
        ],
    )
    with engine.begin() as conn:
        conn.execute(
            update(models.Account.__table__)
            .where(models.Account.__table__.c.account_id == "acme")
            .values(traits={"tinycrm_id": "T-ACME"})
        )


def test_a_registered_destination_is_listed_after_the_built_in_ones(tinycrm):
    assert registry.names() == ["salesforce", "hubspot", "tinycrm"]


def test_a_third_crm_syncs_end_to_end_and_a_second_run_writes_nothing(engine, tinycrm):
    seed_three(engine, tinycrm)
    config = load_config()

    report = run_sync(engine, config, tiny_settings(tinycrm), "tinycrm", now=NOW)

    assert report.status == "ok", report.error
    assert (report.written, report.failed, report.planned) == (2, 0, 2)
    assert [u["account_id"] for u in report.unmatched_accounts] == ["initech"]
    assert "no TinyCRM record has domain initech.example" in report.unmatched_accounts[0]["reason"]
    paths = [e["path"] for e in tinycrm.log]
    assert paths == [SEARCH, BATCH]  # both records fit one batch (batch_size 2)
    assert tinycrm.log[0]["body"] == {"domains": ["globex.com", "initech.example"]}
    written = {r["id"]: r["fields"] for r in tinycrm.writes()[0]["body"]["records"]}
    assert written["T-ACME"] == {
        "tiny_score": "81",
        "tiny_band": "healthy",
        "tiny_reason": "8 syncs a day",
    }
    assert written["T-GLOBEX"]["tiny_score"] == "40"
    assert report.api_calls == 2 and report.write_calls == 1

    again = run_sync(engine, config, tiny_settings(tinycrm), "tinycrm", now=NOW)

    assert (again.status, again.written, again.unchanged) == ("ok", 0, 2)
    # globex's match was remembered: only the still unmatched domain is looked up again
    assert [e["path"] for e in tinycrm.log] == [SEARCH, BATCH, SEARCH]
    assert tinycrm.log[2]["body"] == {"domains": ["initech.example"]}


def test_its_toml_table_shapes_the_run(engine, tinycrm, tmp_path: Path):
    seed_three(engine, tinycrm)
    path = tmp_path / "tiny.toml"
    path.write_text('[syncs.tinycrm]\nbatch_size = 1\n\n[syncs.tinycrm.fields]\nreason = ""\n')
    config = load_config(path)
    registry.validate_config(config, str(path))

    report = run_sync(engine, config, tiny_settings(tinycrm), "tinycrm", now=NOW)

    assert report.status == "ok", report.error
    batches = [w["body"]["records"] for w in tinycrm.writes()]
    assert [len(b) for b in batches] == [1, 1]
    assert all("tiny_reason" not in r["fields"] for b in batches for r in b)


def test_a_bad_key_in_its_table_is_refused_at_start_up_in_one_line(tinycrm, tmp_path: Path):
    path = tmp_path / "tiny.toml"
    path.write_text("[syncs.tinycrm]\nbatch_size = 500\n")

    with pytest.raises(ConfigError) as raised:
        registry.validate_config(load_config(path), str(path))

    message = str(raised.value)
    assert "key syncs.tinycrm.batch_size:" in message and "\n" not in message
    assert message.startswith(f"config {path}:")


def test_a_dry_run_without_credentials_plans_from_traits_alone(engine, tinycrm):
    seed_three(engine, tinycrm)

    report = run_sync(engine, load_config(), Settings(), "tinycrm", dry_run=True, now=NOW)

    assert report.status == "dry_run"
    assert [c["record_id"] for c in report.changes] == ["T-ACME"]
    assert tinycrm.log == []


def test_without_credentials_a_real_run_fails_naming_what_to_set(engine, tinycrm):
    seed_three(engine, tinycrm)

    report = run_sync(engine, load_config(), Settings(), "tinycrm", now=NOW)

    assert report.status == "failed"
    assert report.error.startswith("no TinyCRM credentials; set TINYCRM_API_URL and TINYCRM_TOKEN")


def test_its_secret_never_reaches_the_report(engine, tinycrm):
    seed_three(engine, tinycrm)
    wrong = "tiny-wrong-token-SECRET"

    report = run_sync(engine, load_config(), tiny_settings(tinycrm, wrong), "tinycrm", now=NOW)

    assert report.status == "failed"
    assert "TinyCRM answered 401" in report.error
    assert wrong not in report.error and "***" in report.error
    assert tinycrm.log[0]["path"] == SEARCH  # the fake did get the token


def test_the_scheduler_syncs_it_only_when_its_credentials_are_set(engine, tinycrm):
    config = load_config()

    without = {job.id for job in build_jobs(engine, config, Settings())}
    with_token = {job.id for job in build_jobs(engine, config, tiny_settings(tinycrm))}

    assert "sync.tinycrm" not in without
    assert "sync.tinycrm" in with_token
    assert with_token - without == {"sync.tinycrm"}


def test_its_environment_variables_are_read_from_the_environment(tinycrm, monkeypatch):
    monkeypatch.setenv("TINYCRM_API_URL", tinycrm.url)
    monkeypatch.setenv("TINYCRM_TOKEN", TINY_TOKEN)

    settings = Settings()

    assert [d.name for d in registry.configured(settings)] == ["tinycrm"]
    assert registry.redact(f"echo {TINY_TOKEN}", settings) == "echo ***"
    offline = registry.without_credentials(settings)
    assert registry.configured(offline) == []


def test_the_bot_card_links_the_third_crm_record_through_the_composer(
    engine, tinycrm: FakeTinyCrm, tmp_path: Path
) -> None:
    """The bot never imports syncs: the composing layer hands it every destination's
    label and link template, so TinyCRM's record shows on the dashboard card."""
    from integration_signals.bot.views import answer, parse_command
    from integration_signals.schedules.compose import crm_links

    seed_three(engine, tinycrm)
    path = tmp_path / "signals.toml"
    path.write_text('[syncs.tinycrm]\nrecord_url = "https://tiny.example/r/{id}"\n')
    config = load_config(path)
    settings = tiny_settings(tinycrm)
    links = crm_links(config, settings)
    assert links.labels["tinycrm"] == "TinyCRM" and links.urls["tinycrm"].endswith("/r/{id}")

    card = answer(
        engine,
        config,
        settings,
        parse_command("acme"),
        channel_id=None,
        now=NOW,
        crm_links=links,
    )
    text = str(card["blocks"])
    assert "TinyCRM: <https://tiny.example/r/T-ACME|T-ACME>" in text
