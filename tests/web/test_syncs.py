"""The syncs pages over real HTTP against the fake HubSpot: run history and a run's
detail, an admin's dry-run preview (the record and field diff, nothing written) and
"run now" (the scheduler's run, recorded), never two runs of one destination at once,
and only admins with a CSRF token may start one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, func, select

from integration_signals.config import Config, Settings, load_config
from integration_signals.schedules.locks import TickLocks
from integration_signals.schedules.scheduler import Scheduler
from integration_signals.schedules.server import create_app
from integration_signals.store.engine import is_sqlite
from integration_signals.store.models import SyncLedger, SyncRun
from integration_signals.web.auth import add_user
from tests.fakes.hubspot import FakeHubSpot
from tests.syncs.conftest import FAST_CONFIG, TOKEN, hubspot_rows, seed_scores
from tests.web.conftest import CSRF, NOW, PASSWORD, USERS, Browser

HOSTILE_ERROR = '<script>alert(1)</script> property "x" refused 🚫'


@pytest.fixture
def sync_config(tmp_path: Path) -> Config:
    path = tmp_path / "web-syncs.toml"
    path.write_text(FAST_CONFIG)
    return load_config(path)


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    fake = FakeHubSpot(token=TOKEN)
    fake.start()
    yield fake
    fake.stop()


def _settings(hubspot: FakeHubSpot | None) -> Settings:
    return Settings(
        signals_database_url="unused",
        hubspot_access_token=SecretStr(TOKEN) if hubspot else None,
        hubspot_api_url=hubspot.url if hubspot else None,
    )


def _seed(engine: Engine, hubspot: FakeHubSpot) -> list[dict[str, Any]]:
    rows = hubspot_rows(3)
    for r in rows:
        hubspot.add_company(r["hubspot_id"], name=r["account_id"])
    seed_scores(engine, rows)
    for role, email in USERS.items():
        add_user(engine, email, role=role, password=PASSWORD, now=NOW)
    return rows


@pytest.fixture
def open_site(
    engine: Engine,
    sync_config: Config,
    hubspot: FakeHubSpot,
    live_app: Callable[[Any], str],
) -> Callable[..., Callable[..., Browser]]:
    """``open_site(credentials=True)`` serves the app; returns ``browser(role)``."""
    clients: list[httpx.Client] = []
    _seed(engine, hubspot)

    def start(*, credentials: bool = True) -> Callable[..., Browser]:
        url = live_app(create_app(engine, sync_config, _settings(hubspot if credentials else None)))

        def browser(role: str | None = None) -> Browser:
            client = httpx.Client(timeout=60, follow_redirects=False)
            clients.append(client)
            b = Browser(url, client)
            if role is not None:
                assert b.login(USERS[role]).status_code == 303
            return b

        return browser

    yield start
    for client in clients:
        client.close()


def _token(b: Browser) -> str:
    found = CSRF.search(b.get("/syncs").text)
    assert found, "no csrf_token on /syncs"
    return found.group(1)


def _runs(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(SyncRun.__table__).order_by(SyncRun.__table__.c.id)))


def _ledger_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(SyncLedger.__table__)).scalar_one()


def test_a_dry_run_preview_shows_the_field_diff_and_writes_nothing(
    engine: Engine, hubspot: FakeHubSpot, open_site: Callable[..., Callable[..., Browser]]
) -> None:
    b = open_site()("admin")
    page = b.get("/syncs")
    assert page.status_code == 200
    assert "hubspot" in page.text and "Preview (dry run)" in page.text and "Run now" in page.text
    answer = b.post("/syncs/hubspot/run", {"csrf_token": _token(b), "dry_run": "1"})
    assert answer.status_code == 200, answer.text
    text = answer.text
    assert "Preview: sync to hubspot" in text and "Nothing was written" in text
    assert "integration_health_score" in text and "not written yet" in text
    assert 'href="/accounts/acct-00000"' in text and "10000" in text
    assert hubspot.batch_calls() == 0 and _ledger_rows(engine) == 0
    runs = _runs(engine)
    assert len(runs) == 1 and runs[0].dry_run and runs[0].written == 0
    as_json = b.post(
        "/syncs/hubspot/run",
        {"csrf_token": _token(b), "dry_run": "1"},
        headers={"accept": "application/json"},
    ).json()
    change = next(c for c in as_json["changes"] if c["record_id"] == "10001")
    assert change["account_ids"] == ["acct-00001"]
    assert change["fields"]["integration_health_score"] == {"old": None, "new": "51"}
    assert hubspot.batch_calls() == 0


def test_run_now_writes_records_the_run_and_shows_it_in_the_history(
    engine: Engine, hubspot: FakeHubSpot, open_site: Callable[..., Callable[..., Browser]]
) -> None:
    b = open_site()("admin")
    answer = b.post("/syncs/hubspot/run", {"csrf_token": _token(b)})
    assert answer.status_code == 303, answer.text
    (run,) = _runs(engine)
    assert answer.headers["location"] == f"/syncs/runs/{run.id}"
    assert run.status == "ok" and run.written == 3 and not run.dry_run
    assert hubspot.batch_calls() == 1
    assert hubspot.companies["10002"]["integration_health_score"] == "52"
    detail = b.get(answer.headers["location"])
    assert detail.status_code == 200 and "Sync to hubspot" in detail.text
    assert "3 written" in detail.text  # the flash
    history = b.get("/api/syncs").json()
    assert history["runs"][0]["run_id"] == run.id and history["runs"][0]["written"] == 3
    assert history["available"][0]["destination"] == "salesforce"
    assert {"destination": "hubspot", "last_run": history["runs"][0]} in history["available"]
    assert b.get("/syncs?format=json").json()["runs"] == history["runs"]
    page = b.get("/syncs").text
    assert f'href="/syncs/runs/{run.id}"' in page


def test_a_second_run_now_while_one_runs_is_refused(
    engine: Engine, hubspot: FakeHubSpot, open_site: Callable[..., Callable[..., Browser]]
) -> None:
    browser = open_site()
    first, second = browser("admin"), browser("admin")
    hubspot.latency = 1.5  # every CRM call takes a while: the first run is still going
    results: dict[str, httpx.Response] = {}
    worker = threading.Thread(
        target=lambda: results.setdefault(
            "first",
            first.post(
                "/syncs/hubspot/run",
                {"csrf_token": _token(first)},
                headers={"accept": "application/json"},
            ),
        )
    )
    token = _token(second)
    worker.start()
    deadline = time.monotonic() + 20
    while not _runs(engine) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [r.status for r in _runs(engine)] == ["running"], "the first run did not start"
    refused = second.post(
        "/syncs/hubspot/run", {"csrf_token": token}, headers={"accept": "application/json"}
    )
    assert refused.status_code == 409
    assert refused.json()["error"] == "a sync to hubspot is already running"
    html = second.post("/syncs/hubspot/run", {"csrf_token": token})
    assert html.status_code == 303 and html.headers["location"] == "/syncs"
    assert "a sync to hubspot is already running" in second.get("/syncs").text
    worker.join(60)
    assert results["first"].status_code == 200 and results["first"].json()["status"] == "ok"
    assert [r.status for r in _runs(engine)] == ["ok"]
    hubspot.latency = 0.0
    again = second.post(
        "/syncs/hubspot/run", {"csrf_token": token}, headers={"accept": "application/json"}
    )
    assert again.status_code == 200 and again.json()["written"] == 0


def test_run_now_is_refused_while_the_schedulers_sync_job_holds_its_lock(
    engine: Engine,
    sync_config: Config,
    hubspot: FakeHubSpot,
    live_app: Callable[[Any], str],
) -> None:
    """The web's "run now" takes the scheduler's own job lock (``sync.hubspot``): held
    by the scheduler's run in this process, or on PostgreSQL by any other process."""
    _seed(engine, hubspot)
    settings = _settings(hubspot)
    scheduler = Scheduler(engine, sync_config, settings, [])
    b = Browser(
        live_app(create_app(engine, sync_config, settings, scheduler=scheduler)), httpx.Client()
    )
    assert b.login(USERS["admin"]).status_code == 303
    token = _token(b)
    with scheduler.locks.job_lock("sync.hubspot") as got:
        assert got
        refused = b.post(
            "/syncs/hubspot/run", {"csrf_token": token}, headers={"accept": "application/json"}
        )
    assert refused.status_code == 409, refused.text
    if not is_sqlite(engine):
        other = TickLocks(engine, host="another-serve:1")  # another process's locks
        with other.job_lock("sync.hubspot") as got:
            assert got
            assert (
                b.post(
                    "/syncs/hubspot/run",
                    {"csrf_token": token},
                    headers={"accept": "application/json"},
                ).status_code
                == 409
            )
    assert _runs(engine) == [] and hubspot.log == []
    ok = b.post("/syncs/hubspot/run", {"csrf_token": token}, headers={"accept": "application/json"})
    assert ok.status_code == 200 and ok.json()["written"] == 3
    b.client.close()


def test_without_credentials_run_now_says_what_to_set_and_the_preview_still_works(
    engine: Engine, hubspot: FakeHubSpot, open_site: Callable[..., Callable[..., Browser]]
) -> None:
    b = open_site(credentials=False)("admin")
    answer = b.post("/syncs/hubspot/run", {"csrf_token": _token(b)})
    assert answer.status_code == 303
    page = b.get(answer.headers["location"]).text
    assert "no HubSpot credentials" in page and "HUBSPOT_ACCESS_TOKEN" in page
    (run,) = _runs(engine)
    assert run.status == "failed"
    preview = b.post("/syncs/hubspot/run", {"csrf_token": _token(b), "dry_run": "1"})
    assert preview.status_code == 200 and "integration_health_score" in preview.text
    assert hubspot.log == []


@pytest.mark.parametrize("role", ["viewer", "csm"])
def test_only_admins_see_the_buttons_and_may_start_a_sync(
    role: str,
    engine: Engine,
    hubspot: FakeHubSpot,
    open_site: Callable[..., Callable[..., Browser]],
) -> None:
    b = open_site()(role)
    page = b.get("/syncs")
    assert page.status_code == 200
    assert "Run now" not in page.text and "Preview (dry run)" not in page.text
    token = b.csrf("/accounts/acct-00000")
    for form in ({"csrf_token": token}, {"csrf_token": token, "dry_run": "1"}):
        assert b.post("/syncs/hubspot/run", form).status_code == 403
    assert _runs(engine) == [] and hubspot.log == []


def test_a_sync_needs_the_csrf_token_and_a_session(
    engine: Engine, hubspot: FakeHubSpot, open_site: Callable[..., Callable[..., Browser]]
) -> None:
    browser = open_site()
    admin = browser("admin")
    assert admin.post("/syncs/hubspot/run").status_code == 403
    assert admin.post("/syncs/hubspot/run", {"csrf_token": "forged"}).status_code == 403
    assert admin.post("/syncs/nowhere/run", {"csrf_token": _token(admin)}).status_code == 404
    anonymous = browser()
    assert anonymous.post("/syncs/hubspot/run", {"csrf_token": "x"}).status_code in (401, 303)
    assert anonymous.get("/api/syncs").status_code == 401
    assert _runs(engine) == [] and hubspot.log == []


def test_a_runs_detail_lists_record_errors_and_unmatched_accounts_as_text(
    engine: Engine, hubspot: FakeHubSpot, open_site: Callable[..., Callable[..., Browser]]
) -> None:
    with engine.begin() as conn:
        run_id = conn.execute(
            SyncRun.__table__.insert()
            .values(
                destination="hubspot",
                started_at=NOW,
                finished_at=NOW,
                status="ok",
                dry_run=False,
                full=False,
                planned=2,
                written=1,
                unchanged=0,
                failed=1,
                unmatched=1,
                api_calls=2,
                details={
                    "failures": [
                        {"account_id": "acct-00001", "record_id": "10001", "error": HOSTILE_ERROR}
                    ],
                    "unmatched_accounts": [
                        {"account_id": "ghost", "reason": "no company with domain <b>x</b>"}
                    ],
                    "seconds": 1.25,
                },
            )
            .returning(SyncRun.__table__.c.id)
        ).scalar_one()
    b = open_site()("viewer")
    page = b.get(f"/syncs/runs/{run_id}")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert" not in page.text
    assert "🚫" in page.text and "no company with domain &lt;b&gt;x&lt;/b&gt;" in page.text
    assert 'href="/accounts/ghost"' in page.text and "1.2 s" in page.text
    doc = b.get(f"/api/syncs/runs/{run_id}").json()
    assert doc["failures"][0]["error"] == HOSTILE_ERROR and doc["seconds"] == 1.25
    assert b.get(f"/syncs/runs/{run_id}?format=json").json() == doc
    assert b.get("/syncs/runs/999999").status_code == 404
    assert b.get("/syncs/runs/abc").status_code == 404
