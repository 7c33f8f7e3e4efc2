"""Who may use the dashboard, and what they may do: users and roles, password hashing,
server-side sessions, CSRF tokens, login throttling — and ``can``, the one place a
permission is decided.

Passwords are hashed with argon2id (argon2-cffi). The session cookie holds a random
token; the database keeps only its sha256, so a leaked table does not sign anyone in.
Each session has its own CSRF token, sent back by every form as ``csrf_token``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, func, select, update

from integration_signals.store.models import User, WebSession
from integration_signals.store.sql import as_utc

ROLES = ("admin", "csm", "viewer")
Role = Literal["admin", "csm", "viewer"]
Action = Literal["read", "act_on_tasks", "run_syncs", "preview_syncs"]
# What each role may do; `can` is the only reader of this table.
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"read", "act_on_tasks", "run_syncs", "preview_syncs"}),
    "csm": frozenset({"read", "act_on_tasks"}),
    "viewer": frozenset({"read"}),
}
COOKIE = "signals_session"
MIN_PASSWORD = 10
WRONG_LOGIN = "wrong e-mail or password"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Only stamp last_seen_at this often: a page view should not always write.
_SEEN_EVERY = timedelta(minutes=1)

_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so both answers cost the same.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class BadUser(ValueError):
    """A user cannot be added or removed as asked; the message says why and what to do."""


# ---------------------------------------------------------------- users and passwords


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


def valid_email(email: str) -> str:
    """The lower-cased e-mail, or BadUser when it does not look like one."""
    email = normalize_email(email)
    if not _EMAIL.match(email) or len(email) > 254:
        raise BadUser(f"{email or '(empty)'!r} is not an e-mail address; use name@example.com")
    return email


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; an unknown user (``None``) costs the same time."""
    try:
        ok = _hasher.verify(password_hash or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and password_hash is not None


def authenticate(engine: Engine, email: str, password: str) -> bool:
    """True when ``email`` is a user and ``password`` is theirs. Unknown e-mails are
    verified against a dummy hash, so the answer takes as long either way."""
    u = User.__table__
    with engine.connect() as conn:
        stored = conn.execute(
            select(u.c.password_hash).where(u.c.email == normalize_email(email))
        ).scalar_one_or_none()
    return verify_password(stored, password)


def add_user(
    engine: Engine,
    email: str,
    *,
    role: str,
    password: str,
    now: datetime,
    replace: bool = False,
) -> dict[str, Any]:
    """Create a user (or, with ``replace``, set an existing one's role and password and
    sign them out everywhere)."""
    email = valid_email(email)
    if role not in ROLES:
        raise BadUser(f"role {role!r} is not one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise BadUser(f"the password needs at least {MIN_PASSWORD} characters")
    u = User.__table__
    values = {"role": role, "password_hash": hash_password(password)}
    with engine.begin() as conn:
        exists = conn.execute(select(u.c.email).where(u.c.email == email)).first()
        if exists and not replace:
            raise BadUser(f"user {email} exists; add --replace to set a new role and password")
        if exists:
            conn.execute(update(u).where(u.c.email == email).values(**values))
            conn.execute(delete(WebSession.__table__).where(WebSession.email == email))
        else:
            conn.execute(u.insert().values(email=email, created_at=now, **values))
    return {"email": email, "role": role, "replaced": bool(exists)}


def list_users(engine: Engine) -> list[dict[str, Any]]:
    u, s = User.__table__, WebSession.__table__
    sessions = (
        select(s.c.email, func.max(s.c.last_seen_at).label("last_seen_at"))
        .group_by(s.c.email)
        .subquery()
    )
    with engine.connect() as conn:
        rows = conn.execute(
            select(u.c.email, u.c.role, u.c.created_at, sessions.c.last_seen_at)
            .select_from(u.outerjoin(sessions, sessions.c.email == u.c.email))
            .order_by(u.c.email)
        ).mappings()
        return [dict(r) for r in rows]


def remove_user(engine: Engine, email: str) -> bool:
    """Delete a user and end their sessions; False when there was no such user."""
    email = normalize_email(email)
    with engine.begin() as conn:
        conn.execute(delete(WebSession.__table__).where(WebSession.email == email))
        return bool(conn.execute(delete(User.__table__).where(User.email == email)).rowcount)


# ---------------------------------------------------------------- sessions


@dataclass(frozen=True)
class Actor:
    """The signed-in person behind a request."""

    email: str
    role: str
    csrf_token: str
    token_hash: str


def can(actor: Actor | None, action: Action) -> bool:
    """The one permission check: may ``actor`` do ``action``?"""
    return actor is not None and action in PERMISSIONS.get(actor.role, frozenset())


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(engine: Engine, email: str, *, now: datetime, hours: float) -> str:
    """A new session for ``email``; returns the cookie token (kept only hashed)."""
    token = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        # Expired sessions go when someone signs in: no job needed to keep the table small.
        conn.execute(delete(WebSession.__table__).where(WebSession.expires_at < now))
        conn.execute(
            WebSession.__table__.insert().values(
                token_hash=_token_hash(token),
                email=normalize_email(email),
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                expires_at=now + timedelta(hours=hours),
                last_seen_at=now,
            )
        )
    return token


def session_actor(engine: Engine, token: str | None, *, now: datetime) -> Actor | None:
    """The person a cookie token signs in, or None (no, unknown or expired session, or
    a removed user)."""
    if not token or len(token) > 200:
        return None
    s, u = WebSession.__table__, User.__table__
    digest = _token_hash(token)
    with engine.connect() as conn:
        row = conn.execute(
            select(s.c.email, s.c.csrf_token, s.c.expires_at, s.c.last_seen_at, u.c.role)
            .select_from(s.join(u, u.c.email == s.c.email))
            .where(s.c.token_hash == digest)
        ).first()
    if row is None or as_utc(row.expires_at) <= now:  # type: ignore[operator]
        return None
    if now - as_utc(row.last_seen_at) >= _SEEN_EVERY:  # type: ignore[operator]
        with engine.begin() as conn:
            conn.execute(update(s).where(s.c.token_hash == digest).values(last_seen_at=now))
    return Actor(email=row.email, role=row.role, csrf_token=row.csrf_token, token_hash=digest)


def end_session(engine: Engine, actor: Actor) -> None:
    with engine.begin() as conn:
        conn.execute(delete(WebSession.__table__).where(WebSession.token_hash == actor.token_hash))


def csrf_ok(actor: Actor, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(
        actor.csrf_token.encode(), str(presented).encode()
    )


# ---------------------------------------------------------------- throttling


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0


@dataclass
class LoginThrottle:
    """Slows down guessing: after ``free`` failed sign-ins for one e-mail (or
    ``free_per_address`` from one client address) within ``window`` seconds, each
    further attempt must wait 2^(n - free) seconds, at most ``cap``, after the last
    failure (answered 429 with Retry-After). A success clears the e-mail's count.

    Kept in this process's memory: with several `serve` processes an attacker gets
    that many times the attempts, still a few per minute.
    """

    free: int = 3
    free_per_address: int = 20
    cap: float = 60.0
    window: float = 15 * 60.0
    clock: Callable[[], float] = time.monotonic
    _seen: dict[tuple[str, str], _Failures] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _wait(self, key: tuple[str, str], free: int, now: float) -> float:
        entry = self._seen.get(key)
        if entry is None or now - entry.last > self.window or entry.count < free:
            return 0.0
        delay = min(self.cap, 2.0 ** (entry.count - free))
        return max(0.0, entry.last + delay - now)

    def retry_after(self, email: str, address: str) -> float:
        """Seconds to wait before this attempt may be checked; 0 = go ahead."""
        now = self.clock()
        with self._lock:
            return max(
                self._wait(("email", normalize_email(email)), self.free, now),
                self._wait(("address", address), self.free_per_address, now),
            )

    def failed(self, email: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            if len(self._seen) > 100_000:  # an attack with many names: forget the oldest
                for key in sorted(self._seen, key=lambda k: self._seen[k].last)[:50_000]:
                    del self._seen[key]
            for key in (("email", normalize_email(email)), ("address", address)):
                entry = self._seen.setdefault(key, _Failures())
                if now - entry.last > self.window:
                    entry.count = 0
                entry.count += 1
                entry.last = now

    def succeeded(self, email: str) -> None:
        with self._lock:
            self._seen.pop(("email", normalize_email(email)), None)
