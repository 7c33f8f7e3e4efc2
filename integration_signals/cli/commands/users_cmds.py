"""`signals users add|list|remove`: who may sign in to the web dashboard, and their role
(admin, csm, viewer)."""

from __future__ import annotations

import os
from typing import Any

import typer

from integration_signals.cli.app import app, guarded, runtime
from integration_signals.cli.runtime import UserError, emit

JSON_OPT = typer.Option(False, "--json", help="Print one JSON document on stdout.")
PASSWORD_ENV = "SIGNALS_NEW_PASSWORD"

users_app = typer.Typer(
    help="Web dashboard users: add, list, remove (roles admin, csm, viewer).",
    no_args_is_help=True,
)
app.add_typer(users_app, name="users")


def _password() -> str:
    """From SIGNALS_NEW_PASSWORD (scripts), else a hidden prompt asked twice."""
    given = os.environ.get(PASSWORD_ENV)
    if given:
        return given
    try:
        first = typer.prompt("Password", hide_input=True)
        again = typer.prompt("Repeat it", hide_input=True)
    except typer.Abort:
        raise UserError(f"no password given; type one, or set {PASSWORD_ENV}") from None
    if first != again:
        raise UserError("the two passwords differ; try again")
    return str(first)


@users_app.command("add")
@guarded
def add(
    ctx: typer.Context,
    email: str = typer.Argument(..., help="The e-mail the person signs in with."),
    role: str = typer.Option(
        ..., "--role", help="admin (everything), csm (act on tasks) or viewer (read only)."
    ),
    replace: bool = typer.Option(
        False, "--replace", help="The user exists: set this role and password, sign them out."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Add a user (password from SIGNALS_NEW_PASSWORD, else asked for)."""
    from integration_signals.store.sql import utcnow
    from integration_signals.web.auth import ROLES, BadUser, add_user, valid_email

    if role not in ROLES:
        raise typer.BadParameter(f"{role!r}: use one of {', '.join(ROLES)}", param_hint="--role")
    rt = runtime(ctx)
    try:
        email = valid_email(email)
        result = add_user(
            rt.engine, email, role=role, password=_password(), now=utcnow(), replace=replace
        )
    except BadUser as exc:
        raise UserError(str(exc)) from None
    verb = "updated" if result["replaced"] else "added"
    emit(result, as_json=as_json, render=lambda d: print(f"{verb} {d['email']} ({d['role']})"))


@users_app.command("list")
@guarded
def list_(ctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """The users, their roles and when they were last seen."""
    from integration_signals.store.jsonio import iso
    from integration_signals.web.auth import list_users

    users = list_users(runtime(ctx).engine)

    def render(data: dict[str, Any]) -> None:
        if not data["users"]:
            print("no users yet: `signals users add EMAIL --role admin`")
            return
        for u in data["users"]:
            seen = iso(u["last_seen_at"]) or "never signed in"
            print(f"{u['email']:<40} {u['role']:<8} {seen}")

    emit({"users": users, "total": len(users)}, as_json=as_json, render=render)


@users_app.command("remove")
@guarded
def remove(
    ctx: typer.Context,
    email: str = typer.Argument(..., help="The user's e-mail."),
    as_json: bool = JSON_OPT,
) -> None:
    """Remove a user and end their sessions."""
    from integration_signals.web.auth import normalize_email, remove_user

    email = normalize_email(email)
    if not remove_user(runtime(ctx).engine, email):
        raise UserError(f"no user {email}; see `signals users list`")
    emit(
        {"email": email, "removed": True},
        as_json=as_json,
        render=lambda d: print(f"removed {d['email']}"),
    )
