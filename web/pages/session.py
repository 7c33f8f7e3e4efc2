"""Signing in and out, and our own static files (CSS, JS)."""

from __future__ import annotations

import math

from fastapi import APIRouter, Request, Response

from integration_signals.web import auth
from integration_signals.web.site import (
    STATIC,
    NotFound,
    Site,
    Throttled,
    client_address,
    local_path,
    read_form,
)

STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def register(router: APIRouter, site: Site) -> None:
    static = {
        path.name: (path.read_bytes(), STATIC_TYPES[path.suffix])
        for path in STATIC.iterdir()
        if path.suffix in STATIC_TYPES
    }

    @router.get("/static/{name}", include_in_schema=False)
    def static_file(name: str) -> Response:
        if name not in static:
            raise NotFound(f"no static file {name!r}")
        body, media_type = static[name]
        # URLs carry ?v=<fingerprint>, so a cached copy is never stale.
        return Response(
            body, media_type=media_type, headers={"Cache-Control": "public, max-age=31536000"}
        )

    @router.get("/login", include_in_schema=False)
    def login_page(request: Request, next: str = "/") -> Response:
        target = local_path(next)
        if site.actor(request) is not None:
            return site.redirect(target)
        return site.html(request, "login.html", title="Sign in", next=target, email="", error="")

    @router.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await read_form(request)
        email = auth.normalize_email(form.get("email", ""))[:254]
        password = form.get("password", "")[:1024]
        target = local_path(form.get("next"))
        address = client_address(request)
        wait = site.throttle.retry_after(email, address)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise Throttled(
                f"too many failed sign-ins; wait {seconds} s and try again", retry_after=seconds
            )
        ok = await site.run(lambda: auth.authenticate(site.engine, email, password))
        if not ok:
            site.throttle.failed(email, address)
            return site.html(
                request,
                "login.html",
                status=401,
                title="Sign in",
                next=target,
                email=email,
                error=auth.WRONG_LOGIN,
            )
        site.throttle.succeeded(email)
        token = await site.run(
            lambda: auth.start_session(
                site.engine, email, now=site.clock(), hours=site.config.web.session_hours
            )
        )
        response = site.redirect(target)
        response.set_cookie(
            auth.COOKIE,
            token,
            max_age=int(site.config.web.session_hours * 3600),
            path="/",
            httponly=True,
            samesite="lax",
            secure=site.config.web.secure_cookies,
        )
        return response

    @router.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        actor, _form = await site.checked_form(request)
        await site.run(lambda: auth.end_session(site.engine, actor))
        response = site.redirect("/login")
        response.delete_cookie(auth.COOKIE, path="/")
        return response
