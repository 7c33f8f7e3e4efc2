"""The dashboard in a real browser: headless Chromium from Debian's packages, driven by
Selenium through Debian's chromedriver (nothing is downloaded at test time), against a
real `signals serve` process on the test database (SQLite or PostgreSQL).

A CS lead signs in, opens the portfolio, filters it to at-risk, opens Acme, claims a
task (the store and the Slack message follow), and watches Acme's score change on the
open page, without a reload, when ingest brings new events. Hostile account names show
as text and never run. A page of a past moment keeps its links in that moment and
offers no action.

``SIGNALS_SCREENSHOTS=1`` also saves the portfolio, the account page and the account
page of a past moment to ``docs/`` (the README shows them); CI leaves the tree as it is.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import Engine, select

from integration_signals.config import Config
from integration_signals.scoring.run import score_accounts
from integration_signals.scoring.signals import evaluate_signals
from integration_signals.store.accounts import import_account_objects
from integration_signals.store.demo import generate
from integration_signals.store.ingest import Ingestor, read_objects
from integration_signals.store.models import AccountScore, Task, TaskEvent
from tests.fakes.slack import FakeSlack
from tests.schedules.conftest import (  # noqa: F401  (fixtures)
    ROOT,
    TOKEN,
    ServeFactory,
    ServeProcess,
    fake_slack,
    serve_factory,
    wait_for,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Read at import: the tests' autouse fixture clears SIGNALS_* before each test runs.
SCREENSHOTS = os.environ.get("SIGNALS_SCREENSHOTS", "") not in ("", "0")
DOCS = ROOT / "docs"

pytestmark = [
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="the browser tests need Debian's chromium and chromium-driver "
        "(/usr/bin/chromium, /usr/bin/chromedriver); .ci/run installs them: "
        "apt-get install chromium chromium-driver",
    ),
    pytest.mark.timeout(300),
]

CSM = "dana@example.com"  # Acme's CSM in the demo data, and the owner of its tasks
PASSWORD = "a long browser-test password"
HOSTILE = "<script>alert(1)</script>"
HOSTILE_ID = "acct-0058"  # the smallest MRR: last when sorted by MRR
# Acme's connections all answer 401 for the last days: Acme is at risk with a task per
# broken connection (health_degradation), the story the CS lead follows.
BROKEN_DAYS = 12
BROKEN_ERROR = "401 Unauthorized: token expired"
HISTORY_DAYS = (35, 28, 21, 14, 7, 0)
WAIT = 20  # seconds; the live path takes about one poll interval (2 s) plus rescoring


# ---------------------------------------------------------------- the data


def seed_dashboard(engine: Engine, config: Config, *, now: datetime, accounts: int = 60) -> None:
    """The demo data set (``store.demo``) through the normal ingest path, with every one
    of Acme's connections failing for ``BROKEN_DAYS`` days and one account named like a
    script; scored weekly for a month, signals evaluated (Acme's tasks open)."""
    data = generate(7, accounts, end=now)
    since = _z(now - timedelta(days=BROKEN_DAYS))
    for event in data.events:
        if (
            event.get("account_id") == "acme"
            and event["type"] == "sync.succeeded"
            and event["occurred_at"] >= since
        ):
            event.update(type="sync.failed", error=BROKEN_ERROR)
            event.pop("records", None), event.pop("bytes", None)
    for account in data.accounts:
        if account["account_id"] == HOSTILE_ID:
            account["name"] = HOSTILE
    import_account_objects(engine, data.accounts, source="demo", now=now)
    Ingestor(engine, config, now=now).ingest(read_objects(data.events), source="demo")
    # Scored weekly for a month and today: 30-day trends, changes since last week.
    for days_ago in HISTORY_DAYS:
        score_accounts(engine, config, as_of=now - timedelta(days=days_ago), full=True)
    evaluate_signals(engine, config, as_of=now)


def _z(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def repaired_syncs(now: datetime) -> list[dict[str, Any]]:
    """Salesforce and HubSpot sync again: Acme's score rises."""
    return [
        {
            "event_id": f"browser-fix-{key}-{i}",
            "type": "sync.succeeded",
            "occurred_at": _z(now),
            "account_id": "acme",
            "integration": key,
            "connection_id": f"acme-{key}",
            "records": 1200,
        }
        for key in ("salesforce", "hubspot")
        for i in range(3)
    ]


def acme_score(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(AccountScore.score).where(AccountScore.account_id == "acme")
        ).scalar_one()


def acme_tasks(engine: Engine) -> list[Any]:
    t = Task.__table__
    with engine.connect() as conn:
        return conn.execute(select(t).where(t.c.account_id == "acme").order_by(t.c.id)).all()


def task_events(engine: Engine, task_id: int) -> list[tuple[str, str, str | None, str | None]]:
    t = TaskEvent.__table__
    with engine.connect() as conn:
        return [
            (r.actor, r.action, r.from_status, r.to_status)
            for r in conn.execute(select(t).where(t.c.task_id == task_id).order_by(t.c.id))
        ]


# ---------------------------------------------------------------- the server


@dataclass
class Dashboard:
    """A running `signals serve` with the seeded store, its fake Slack and the user."""

    process: ServeProcess
    slack: FakeSlack
    engine: Engine
    now: datetime

    @property
    def url(self) -> str:
        return self.process.url


def add_user_by_cli(factory: ServeFactory, email: str, role: str) -> None:
    """`signals users add` as an operator runs it, the password from the environment."""
    env = factory.environment() | {"SIGNALS_NEW_PASSWORD": PASSWORD}
    done = subprocess.run(
        [sys.executable, "-m", "integration_signals", "users", "add", email, "--role", role],
        cwd=factory.tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr


@pytest.fixture
def dashboard(
    engine: Engine,
    serve_factory: ServeFactory,  # noqa: F811
    fake_slack: FakeSlack,  # noqa: F811
) -> Iterator[Dashboard]:
    """Seed, add the CSM with `signals users add`, start `signals serve` with Slack set
    up (it posts the open tasks at start-up), and wait until Acme's tasks are in Slack."""
    from integration_signals.config import load_config

    now = datetime.now(UTC).replace(microsecond=0)
    seed_dashboard(engine, load_config(None), now=now)
    add_user_by_cli(serve_factory, CSM, "csm")
    serve_factory.env.update(
        {
            "SLACK_BOT_TOKEN": "xoxb-browser",
            "SLACK_SIGNING_SECRET": "browser-signing-secret",
            "SLACK_TASKS_CHANNEL": "C-TASKS",
            "SLACK_API_URL": fake_slack.api_url,
        }
    )
    process = serve_factory.start()
    wait_for(
        lambda: all(row.slack_ts for row in acme_tasks(engine)),
        timeout=60,
        what="Acme's tasks to be posted to Slack",
        every=0.2,
    )
    yield Dashboard(process, fake_slack, engine, now)
    assert process.terminate() == 0
    log = process.log()
    assert "Traceback" not in log, log
    assert PASSWORD not in log and "xoxb-browser" not in log


# ---------------------------------------------------------------- the browser


@pytest.fixture
def chrome(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    """Headless Chromium from /usr/bin through /usr/bin/chromedriver. Selenium Manager
    is never asked for anything (SE_OFFLINE): no download at test time."""
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1440,1000",
        "--lang=en-US",
        "--hide-scrollbars",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def sign_in(driver: WebDriver, url: str, path: str = "/") -> None:
    """Open ``path`` without a session, land on the login form, sign in, come back."""
    driver.get(url + path)
    WebDriverWait(driver, WAIT).until(ec.url_contains("/login"))
    driver.find_element(By.NAME, "email").send_keys(CSM)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form[action='/login'] button[type=submit]").click()
    WebDriverWait(driver, WAIT).until(lambda d: "/login" not in d.current_url)


def live_cell(driver: WebDriver, account_id: str, field: str) -> Any:
    return driver.find_element(
        By.CSS_SELECTOR, f"[data-live-account='{account_id}'] [data-live-field='{field}']"
    )


def console_errors(driver: WebDriver) -> list[str]:
    """Severe console messages since the last call, less the missing favicon."""
    try:
        entries = driver.get_log("browser")
    except Exception:  # noqa: BLE001 — a driver without the log: nothing to check
        return []
    return [
        e["message"]
        for e in entries
        if e.get("level") == "SEVERE" and "favicon.ico" not in e.get("message", "")
    ]


def assert_no_dialog(driver: WebDriver) -> None:
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert  # noqa: B018 — the property raises when there is none


def screenshot(driver: WebDriver, name: str, *, height: int | None = None) -> None:
    """Save the page, from its top, to docs/<name> when SIGNALS_SCREENSHOTS is set."""
    if not SCREENSHOTS:
        return
    DOCS.mkdir(exist_ok=True)
    driver.execute_script("window.scrollTo(0, 0)")
    if height is None:
        height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1440, max(900, min(int(height) + 40, 2600)))
    time.sleep(0.3)
    driver.save_screenshot(str(DOCS / name))
    driver.set_window_size(1440, 1000)


# ---------------------------------------------------------------- the tests


def test_a_csm_signs_in_filters_to_at_risk_claims_acmes_task_and_sees_the_score_go_live(
    dashboard: Dashboard, chrome: WebDriver
) -> None:
    driver, engine = chrome, dashboard.engine
    sign_in(driver, dashboard.url, "/?sort=mrr&order=desc")

    # The portfolio, largest MRR first, filtered to at-risk: Acme is there, every row at risk.
    WebDriverWait(driver, WAIT).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "[data-live-account='acme']"))
    )
    screenshot(driver, "portfolio.png", height=1000)
    # The band drop-down applies itself (the Apply button does it without JavaScript).
    Select(driver.find_element(By.NAME, "band")).select_by_value("at_risk")
    WebDriverWait(driver, WAIT).until(ec.url_contains("band=at_risk"))
    bands = [
        el.get_attribute("data-live-band")
        for el in driver.find_elements(By.CSS_SELECTOR, "[data-live-field='band']")
    ]
    assert bands and set(bands) == {"at_risk"}, bands
    assert live_cell(driver, "acme", "band").text == "at risk"

    # Acme's page: its tasks, one per broken connection, each with a Claim button.
    driver.find_element(By.CSS_SELECTOR, "a[href='/accounts/acme']").click()
    WebDriverWait(driver, WAIT).until(ec.url_contains("/accounts/acme"))
    assert driver.find_element(By.TAG_NAME, "h1").text == "Acme Corp"
    task = acme_tasks(engine)[0]
    assert (task.status, task.claimed_by) == ("open", None)
    driver.find_element(
        By.CSS_SELECTOR, f"form[action='/tasks/{task.id}/claim'] button[type=submit]"
    ).click()
    WebDriverWait(driver, WAIT).until(
        ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash"), f"Task {task.id} claimed.")
    )
    assert "status-claimed" in driver.find_element(By.ID, f"task-{task.id}").get_attribute("class")

    # The store: claimed by the signed-in e-mail, with the same history row Slack writes.
    claimed = next(t for t in acme_tasks(engine) if t.id == task.id)
    assert (claimed.status, claimed.claimed_by) == ("claimed", CSM)
    assert task_events(engine, task.id)[-1] == (CSM, "claim", "open", "claimed")
    # Slack: the task's posted message is updated to show the claim.
    updates = dashboard.slack.wait_for(
        lambda r: r.api == "chat.update" and r.body.get("ts") == task.slack_ts
    )
    assert updates[0].body["channel"] == task.slack_channel
    message = dashboard.slack.messages[(task.slack_channel, task.slack_ts)]
    assert CSM in str(message["blocks"])
    screenshot(driver, "account.png")

    # Ingest rescored Acme: the open page shows the new score without a reload.
    driver.execute_script("window.__signalsNoReload = 'still the same page';")
    before_score = live_cell(driver, "acme", "score").text
    assert int(before_score) == acme_score(engine)
    answer = httpx.post(
        f"{dashboard.url}/v1/events",
        json=repaired_syncs(datetime.now(UTC)),
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert answer.status_code == 200 and answer.json()["accepted"] == 6, answer.text
    answered = time.monotonic()
    WebDriverWait(driver, WAIT).until(
        lambda d: live_cell(d, "acme", "score").text != before_score,
        message="the score on the open page did not change",
    )
    seconds = time.monotonic() - answered
    shown = int(live_cell(driver, "acme", "score").text)
    assert shown > int(before_score)
    assert shown == acme_score(engine)
    assert driver.execute_script("return window.__signalsNoReload") == "still the same page"
    assert live_cell(driver, "acme", "notice").is_displayed()
    print(f"live update shown {seconds:.1f} s after /v1/events answered")

    # Nothing the CSP refused, no script errors, on any page of the walk.
    assert console_errors(driver) == []


def test_an_account_named_like_a_script_shows_as_text_and_runs_nothing(
    dashboard: Dashboard, chrome: WebDriver
) -> None:
    driver = chrome
    sign_in(driver, dashboard.url, f"/accounts/{HOSTILE_ID}")
    WebDriverWait(driver, WAIT).until(ec.presence_of_element_located((By.TAG_NAME, "h1")))
    assert_no_dialog(driver)
    assert driver.find_element(By.TAG_NAME, "h1").text == HOSTILE
    assert driver.execute_script("return document.querySelectorAll('main script').length") == 0

    # The portfolio, searched by the name, lists it as text too.
    driver.get(f"{dashboard.url}/?q=script")
    link = WebDriverWait(driver, WAIT).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, f"a[href='/accounts/{HOSTILE_ID}']"))
    )
    assert_no_dialog(driver)
    assert link.text == HOSTILE
    assert console_errors(driver) == []


def test_a_csm_looks_at_a_past_moment_stays_in_it_and_cannot_act_on_it(
    dashboard: Dashboard, chrome: WebDriver
) -> None:
    """The task queue as of a moment: its links (here to Acme) keep the moment, the
    pages say which moment and offer no Claim / Done / Snooze, and "back to now" returns
    to the present, where the actions are."""
    driver = chrome
    moment = _z(dashboard.now)  # when Acme's tasks were opened
    sign_in(driver, dashboard.url, f"/tasks?as_of={moment}")
    WebDriverWait(driver, WAIT).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, ".as-of-banner"))
    )
    assert driver.find_elements(By.CSS_SELECTOR, ".past-note")
    assert not driver.find_elements(By.CSS_SELECTOR, "form[action^='/tasks/']")

    driver.find_element(By.CSS_SELECTOR, ".task-meta a[href^='/accounts/acme?']").click()
    WebDriverWait(driver, WAIT).until(ec.url_contains("/accounts/acme?"))
    assert "as_of=" in driver.current_url
    assert driver.find_element(By.TAG_NAME, "h1").text == "Acme Corp"
    assert driver.find_elements(By.CSS_SELECTOR, ".as-of-banner")
    notes = driver.find_elements(By.CSS_SELECTOR, ".past-note")
    assert notes and "back to now" in notes[0].text
    assert not driver.find_elements(By.CSS_SELECTOR, "form[action^='/tasks/']")
    for link in driver.find_elements(By.CSS_SELECTOR, "main a[href^='/']"):
        if link.text.strip().lower() != "back to now":
            assert "as_of=" in (link.get_attribute("href") or ""), link.get_attribute("href")
    screenshot(driver, "past-account.png")

    notes[0].find_element(By.LINK_TEXT, "back to now").click()
    WebDriverWait(driver, WAIT).until(lambda d: "as_of" not in d.current_url)
    assert not driver.find_elements(By.CSS_SELECTOR, ".as-of-banner")
    assert driver.find_elements(By.CSS_SELECTOR, "form[action^='/tasks/']")
    assert console_errors(driver) == []
