"""`signals users add|list|remove`: who may sign in, with one-line errors and --json."""

from __future__ import annotations

import json

from sqlalchemy import Engine

from integration_signals.web.auth import authenticate


def test_add_list_remove_a_user(cli, engine: Engine) -> None:
    env = {"SIGNALS_NEW_PASSWORD": "a long enough secret"}
    added = cli("users", "add", "Dana@Example.com", "--role", "csm", "--json", env=env)
    assert added.exit_code == 0, added.stderr
    assert json.loads(added.stdout) == {
        "email": "dana@example.com",
        "role": "csm",
        "replaced": False,
    }
    assert authenticate(engine, "dana@example.com", "a long enough secret")
    assert "a long enough secret" not in added.stdout + added.stderr
    listed = json.loads(cli("users", "list", "--json").stdout)
    assert listed["total"] == 1
    assert listed["users"][0]["email"] == "dana@example.com"
    assert listed["users"][0]["role"] == "csm" and listed["users"][0]["last_seen_at"] is None
    assert "password_hash" not in listed["users"][0]
    again = cli("users", "add", "dana@example.com", "--role", "admin", env=env)
    assert again.exit_code == 1 and "--replace" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    replaced = cli("users", "add", "dana@example.com", "--role", "admin", "--replace", env=env)
    assert replaced.exit_code == 0 and "updated dana@example.com (admin)" in replaced.stdout
    removed = cli("users", "remove", "DANA@example.com", "--json")
    assert json.loads(removed.stdout) == {"email": "dana@example.com", "removed": True}
    assert json.loads(cli("users", "list", "--json").stdout)["total"] == 0
    gone = cli("users", "remove", "dana@example.com")
    assert gone.exit_code == 1 and "no user dana@example.com" in gone.stderr


def test_bad_input_is_refused_in_one_line(cli) -> None:
    env = {"SIGNALS_NEW_PASSWORD": "a long enough secret"}
    assert cli("users", "add", "x@example.com", "--role", "boss", env=env).exit_code == 2
    for args, message in (
        (("not-an-email",), "is not an e-mail address"),
        (("x@example.com",), "at least 10 characters"),
    ):
        short = {"SIGNALS_NEW_PASSWORD": "short"} if message.startswith("at least") else env
        result = cli("users", "add", *args, "--role", "csm", env=short)
        assert result.exit_code == 1 and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_without_the_variable_the_password_is_asked_twice(cli, engine: Engine) -> None:
    from typer.testing import CliRunner

    from integration_signals.cli import app

    result = CliRunner().invoke(
        app,
        ["users", "add", "vic@example.com", "--role", "viewer"],
        input="another long secret\nanother long secret\n",
    )
    assert result.exit_code == 0, result.output
    assert authenticate(engine, "vic@example.com", "another long secret")
    mismatch = CliRunner().invoke(
        app,
        ["users", "add", "max@example.com", "--role", "viewer"],
        input="another long secret\nsomething else entirely\n",
    )
    assert mismatch.exit_code == 1 and "differ" in mismatch.output
