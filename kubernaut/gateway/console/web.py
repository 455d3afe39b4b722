"""What every console page does: find the session and the principal behind it, check a permission as the REST
route would, render a template with the security headers, and refuse a state-changing form without its CSRF
token.

The principal comes from the session's credential through the gateway's own authentication chain
(:class:`kubernaut.identity.chain.AuthChain`), exactly as an ``Authorization`` header would give it; each page
needs the permission of the REST route that reads the same thing (``list incidents``, ``get incidents``, ...).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment

from kubernaut import __version__
from kubernaut.gateway.console import render
from kubernaut.gateway.console.session import SESSION_COOKIE, Session, SessionCodec, is_tls, key_from_secret, set_cookie
from kubernaut.gateway.services import GatewayServices, Services
from kubernaut.identity.chain import Denied
from kubernaut.models.principal import Permission, Principal
from kubernaut.storage import console_keys


@dataclass
class Console:
    """This replica's console: the session codec (its key shared by every replica) and the templates."""

    codec: SessionCodec
    templates: Environment


_console: Console | None = None
_lock = asyncio.Lock()


async def console_of(svc: GatewayServices) -> Console:
    global _console
    if _console is None:
        async with _lock:
            if _console is None:
                cfg = svc.config.console
                secret = cfg.session_secret.get_secret_value() if cfg.session_secret else None
                key = key_from_secret(secret) if secret else await console_keys.session_key(svc.db.pool)
                _console = Console(SessionCodec(key, cfg.session_ttl_s), render.environment())
    return _console


def enabled(svc: Services) -> None:
    """Router dependency: the console's routes are not there when ``console.enabled`` is false."""
    if not svc.config.console.enabled:
        raise HTTPException(status_code=404, detail="Not Found")


def base_path(request: Request) -> str:
    """The application's route prefix (Serve's root_path): every link of the console starts with it."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def secure_headers(response: Response, *, cache: bool = False) -> Response:
    response.headers.update(render.SECURITY_HEADERS)
    if not cache:
        response.headers["Cache-Control"] = "no-store"
    return response


class SignInRequired(Exception):
    """No session, or its credential no longer authenticates: the page sends the browser to sign in."""


class Refused(Exception):
    """403/503 from the authorizer, or 400/403/404 of the console itself, shown as an error page."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class Visit:
    """One request to a console page: who, through which session, and the response cookie to refresh."""

    request: Request
    svc: GatewayServices
    console: Console
    session: Session
    principal: Principal
    new_session: bool = False
    flash: str | None = None
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return base_path(self.request)

    async def require(self, verb: str, resource: str, namespace: str | None = None) -> None:
        """The REST route's permission for the same read; 403 (audited and counted like the API's) if not."""
        try:
            await self.svc.auth.authorize(self.principal, Permission(verb=verb, resource=resource,
                                                                      namespace=namespace))
        except Denied as exc:
            raise Refused(exc.status, exc.message, exc.headers) from None

    async def may(self, verb: str, resource: str, namespace: str | None = None) -> bool:
        """Whether to offer something (the approve button): asked without counting a refusal."""
        permission = Permission(verb=verb, resource=resource, namespace=namespace,
                                cluster=self.svc.config.cluster_name)
        return await self.svc.auth.allows(self.principal, permission)

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        cfg = self.svc.config
        page = self.console.templates.get_template(template).render(
            base=self.base, principal=self.principal, csrf=self.session.csrf, version=__version__,
            cluster=cfg.cluster_name, dry_run=cfg.dry_run, refresh_ms=int(cfg.console.refresh_s * 1000),
            signed_in=self.session.credential is not None, flash=self.flash, **self.context, **values)
        response = HTMLResponse(page, status_code=status)
        if self.new_session:
            set_cookie(response, self.request, SESSION_COOKIE, self.console.codec.seal(self.session),
                       max_age=self.svc.config.console.session_ttl_s,
                       secure=is_tls(self.request, cfg.gateway.trust_forwarded_for))
        return secure_headers(response)


async def visit(request: Request, svc: GatewayServices) -> Visit:
    """The session (a fresh one, without credential, if the browser has none) and its principal; raises
    :class:`SignInRequired` when the gateway does not know the caller."""
    console = await console_of(svc)
    session = console.codec.open(request.cookies.get(SESSION_COOKIE), Session)
    new = session is None
    if session is None:
        session = Session()
    try:
        principal = await svc.auth.authenticate(session.authorization)
    except Denied as exc:
        if exc.status == 401:
            raise SignInRequired() from None
        raise Refused(exc.status, exc.message, exc.headers) from None
    return Visit(request, svc, console, session, principal, new_session=new)


def sign_in_redirect(request: Request) -> Response:
    """To the sign-in page, coming back here afterwards. A polling fragment (htmx) gets HX-Redirect: it would
    otherwise put the sign-in page inside the list."""
    path, base = request.url.path, base_path(request)
    back = (path[len(base):] if base and path.startswith(base) else path) or "/console/incidents"
    if request.url.query:
        back += f"?{request.url.query}"
    target = f"{base_path(request)}/console/signin?next={quote(back, safe='')}"
    if request.headers.get("hx-request"):
        return secure_headers(Response(status_code=204, headers={"HX-Redirect": target}))
    return secure_headers(RedirectResponse(target, status_code=303))


def error_page(request: Request, svc: GatewayServices, console: Console, status: int, message: str,
               headers: dict[str, str] | None = None) -> HTMLResponse:
    page = console.templates.get_template("error.html").render(
        base=base_path(request), principal=None, csrf="", version=__version__, cluster=svc.config.cluster_name,
        dry_run=svc.config.dry_run, refresh_ms=0, signed_in=False, flash=None, status=status, message=message)
    return secure_headers(HTMLResponse(page, status_code=status, headers=headers))


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path only (never another site: no open redirect)."""
    if value and value.startswith("/console/") and not any(bad in value for bad in ("//", "\\", "..")):
        return value
    return "/console/incidents"
