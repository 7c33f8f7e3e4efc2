"""Sign-in, sessions, CSRF, roles and headers: nothing of the dashboard is public, and
a refused request changes nothing."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import Engine, func, select

from integration_signals.store.models import TaskEvent, WebSession
from integration_signals.web.site import CSP
from tests.bot.conftest import add_task, task_row
from tests.web.conftest import PASSWORD, USERS, Browser, config_with, seed


def test_signing_in_sets_an_httponly_lax_session_cookie_and_goes_to_next(
    browser: Callable[..., Browser], engine: Engine
) -> None:
    b = browser()
    answer = b.login(USERS["csm"], next="/accounts/acme")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/accounts/acme"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("signals_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    with engine.connect() as conn:
        stored = conn.execute(select(WebSession.token_hash, WebSession.email)).all()
    assert len(stored) == 1 and stored[0].email == USERS["csm"]
    assert token not in stored[0].token_hash  # only its hash is kept
    assert b.get("/accounts/acme").status_code == 200


def test_secure_cookies_config_marks_the_cookie_secure(
    engine: Engine, serve_web: Callable[..., str]
) -> None:
    config = config_with(secure_cookies=True)
    seed(engine, config)
    url = serve_web(config)
    answer = httpx.post(
        url + "/login", data={"email": USERS["admin"], "password": PASSWORD}, timeout=30
    )
    assert answer.status_code == 303 and "Secure" in answer.headers["set-cookie"]


@pytest.mark.parametrize(
    "next_target", ["//evil.example/x", "https://evil.example/", "/\\evil.example"]
)
def test_next_never_leaves_the_site(browser: Callable[..., Browser], next_target: str) -> None:
    answer = browser().login(USERS["csm"], next=next_target)
    assert answer.status_code == 303 and answer.headers["location"] == "/"


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(
    browser: Callable[..., Browser],
) -> None:
    wrong = browser().login(USERS["csm"], "not the password")
    unknown = browser().login("nobody@example.com", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "wrong e-mail or password" in wrong.text and "wrong e-mail or password" in unknown.text
    assert "set-cookie" not in wrong.headers and "set-cookie" not in unknown.headers
    # The pages differ only in the e-mail echoed back into the form.
    assert wrong.text.replace(USERS["csm"], "X") == unknown.text.replace("nobody@example.com", "X")


def test_repeated_failures_are_slowed_down_then_a_right_password_works_again(
    browser: Callable[..., Browser],
) -> None:
    b = browser()
    for _ in range(3):
        assert b.login(USERS["csm"], "guess").status_code == 401
    throttled = b.login(USERS["csm"], PASSWORD)  # even the right one waits its turn
    assert throttled.status_code == 429
    wait = int(throttled.headers["retry-after"])
    assert 1 <= wait <= 60 and "too many failed sign-ins" in throttled.text
    assert "set-cookie" not in throttled.headers
    time.sleep(wait + 0.1)
    assert b.login(USERS["csm"], PASSWORD).status_code == 303
    # Other people are not slowed down by someone guessing at one e-mail.
    assert browser().login(USERS["viewer"]).status_code == 303


@pytest.mark.parametrize(
    "path", ["/", "/accounts/acme", "/accounts/acme?format=json", "/api/accounts/acme", "/api/live"]
)
def test_without_a_session_pages_go_to_login_and_the_api_answers_401(
    browser: Callable[..., Browser], path: str
) -> None:
    answer = browser().get(path)
    if path.startswith("/api/") or "format=json" in path:
        assert answer.status_code == 401
        assert answer.json() == {"error": "sign in first"}
    else:
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/login?next=/")
    assert answer.headers["content-security-policy"] == CSP


def test_a_forged_or_stale_session_cookie_signs_no_one_in(browser: Callable[..., Browser]) -> None:
    b = browser()
    b.client.cookies.set("signals_session", "forged-token-value")
    assert b.get("/accounts/acme").status_code == 303


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_a_post_without_the_right_csrf_token_is_403_and_changes_nothing(
    browser: Callable[..., Browser], engine: Engine, token: str | None
) -> None:
    task_id = add_task(engine)
    b = browser("csm")
    data = {} if token is None else {"csrf_token": token}
    answer = b.post(f"/tasks/{task_id}/claim", data)
    assert answer.status_code == 403
    assert task_row(engine, task_id)["status"] == "open"
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(TaskEvent)).scalar_one() == 0
    # Signing out needs the token too.
    assert b.post("/logout", data).status_code == 403
    assert b.get("/accounts/acme").status_code == 200


def test_a_viewer_may_read_but_not_act_on_tasks(
    browser: Callable[..., Browser], engine: Engine
) -> None:
    task_id = add_task(engine)
    b = browser("viewer")
    page = b.get("/accounts/acme")
    assert page.status_code == 200
    assert f'action="/tasks/{task_id}/claim"' not in page.text  # no buttons shown
    answer = b.post(f"/tasks/{task_id}/claim", {"csrf_token": b.csrf()})
    assert answer.status_code == 403 and "viewer" in answer.text
    assert task_row(engine, task_id)["status"] == "open"


def test_signing_out_ends_the_session(browser: Callable[..., Browser], engine: Engine) -> None:
    b = browser("admin")
    answer = b.post("/logout", {"csrf_token": b.csrf()})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(WebSession)).scalar_one() == 0
    assert b.get("/accounts/acme").status_code == 303


@pytest.mark.parametrize(
    "path",
    ["/login", "/accounts/acme", "/api/accounts/acme", "/accounts/nope", "/static/app.css", "/"],
)
def test_every_web_answer_carries_the_security_headers(
    browser: Callable[..., Browser], path: str
) -> None:
    answer = browser("csm").get(path)
    assert answer.headers["content-security-policy"] == CSP
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "same-origin"


def test_pages_have_no_inline_script_or_style(browser: Callable[..., Browser]) -> None:
    for role, path in ((None, "/login"), ("csm", "/accounts/acme")):
        html = browser(role).get(path).text
        assert "<script>" not in html and " style=" not in html and " onclick=" not in html
        assert '<script src="/static/app.js' in html


def test_the_serve_endpoints_keep_their_behaviour(site: str) -> None:
    assert httpx.get(site + "/healthz", timeout=10).json()["status"] == "ok"
    refused = httpx.post(site + "/v1/events", content=b"[]", timeout=10)
    assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
    assert httpx.get(site + "/v1/events", timeout=10).status_code == 405
