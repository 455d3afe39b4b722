"""Signing in to the console: a token form checked by the gateway's authentication chain, or OIDC (authorization
code with PKCE) where ``gateway.oidc`` and ``console.oidc.client_id`` are configured; signing out; the static
files (public: the sign-in page needs them).

Either way the session keeps the credential (the token, or the issuer's ID token) and every request
authenticates it again through the same chain as an ``Authorization`` header; the console itself grants
nothing. A loopback gateway without authentication has no sign-in: every local caller is its anonymous
principal, as for the REST API.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from importlib import resources
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kubernaut import __version__
from kubernaut.gateway.console.session import (
    OIDC_COOKIE,
    OIDC_TTL_S,
    SESSION_COOKIE,
    OIDCState,
    Session,
    clear_cookie,
    is_tls,
    set_cookie,
)
from kubernaut.gateway.console.web import (
    Console,
    base_path,
    console_of,
    enabled,
    error_page,
    safe_next,
    secure_headers,
)
from kubernaut.gateway.services import GatewayServices, Services
from kubernaut.identity.chain import Denied

router = APIRouter(include_in_schema=False, dependencies=[Depends(enabled)])

STATIC = {"htmx.min.js": "text/javascript", "console.js": "text/javascript", "console.css": "text/css",
          "htmx.LICENSE.txt": "text/plain"}


@router.get("/console/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC:
        return Response(status_code=404)
    body = resources.files("kubernaut.gateway.console").joinpath("static", name).read_bytes()
    response = Response(body, media_type=STATIC[name])
    response.headers["Cache-Control"] = "public, max-age=3600"
    return secure_headers(response, cache=True)


def _oidc_configured(svc: GatewayServices) -> bool:
    return svc.config.gateway.oidc.enabled and bool(svc.config.console.oidc.client_id)


def _signin_page(request: Request, svc: GatewayServices, console: Console, session: Session, next_: str,
                 error: str | None = None, status: int = 200) -> Response:
    page = console.templates.get_template("signin.html").render(
        base=base_path(request), principal=None, csrf=session.csrf, version=__version__,
        cluster=svc.config.cluster_name, dry_run=svc.config.dry_run, refresh_ms=0, signed_in=False, flash=None,
        next=next_, error=error, oidc=_oidc_configured(svc))
    response = HTMLResponse(page, status_code=status)
    set_cookie(response, request, SESSION_COOKIE, console.codec.seal(session), max_age=svc.config.console.session_ttl_s,
               secure=is_tls(request, svc.config.gateway.trust_forwarded_for))
    return secure_headers(response)


@router.get("/console/signin")
async def signin_form(request: Request, svc: Services, next: str | None = Query(default=None, max_length=2000)
                      ) -> Response:
    console = await console_of(svc)
    if svc.auth.anonymous is not None:  # nothing to sign in to (loopback without authentication)
        return secure_headers(RedirectResponse(base_path(request) + safe_next(next), status_code=303))
    # A session without credential carries the form's CSRF token (no signing in someone else's token).
    session = console.codec.open(request.cookies.get(SESSION_COOKIE), Session) or Session()
    return _signin_page(request, svc, console, Session(csrf=session.csrf), safe_next(next))


@router.post("/console/signin")
async def signin(request: Request, svc: Services) -> Response:
    console = await console_of(svc)
    form = await request.form()
    next_ = safe_next(str(form.get("next") or ""))
    session = console.codec.open(request.cookies.get(SESSION_COOKIE), Session)
    if session is None or not session.csrf_matches(str(form.get("csrf") or "")):
        return error_page(request, svc, console, 403, "refused: the form's CSRF token is missing or wrong "
                          "(reload the sign-in page)")
    token = str(form.get("token") or "").strip()
    if not token or len(token) > 16_384 or any(c.isspace() for c in token):
        return _signin_page(request, svc, console, session, next_, "token: paste an API token", status=400)
    try:
        principal = await svc.auth.authenticate(f"Bearer {token}")
    except Denied as exc:
        if exc.status == 401:
            return _signin_page(request, svc, console, session, next_, exc.message, status=401)
        return error_page(request, svc, console, exc.status, exc.message, exc.headers)
    return _signed_in(request, svc, console, Session(credential=token, method="token"), next_, principal.actor)


def _signed_in(request: Request, svc: GatewayServices, console: Console, session: Session, next_: str,
               actor: str, *, via_page: bool = False) -> Response:
    """A new session (a new CSRF token too: nothing chosen before signing in survives it)."""
    target = base_path(request) + next_
    if via_page:
        # After the issuer's redirect (a navigation from another site) a SameSite=Strict cookie set now would
        # not be sent on a further redirect; a page of ours that moves on is a same-site navigation.
        page = console.templates.get_template("moving_on.html").render(target=target, actor=actor)
        response: Response = HTMLResponse(page)
    else:
        response = RedirectResponse(target, status_code=303)
    secure = is_tls(request, svc.config.gateway.trust_forwarded_for)
    set_cookie(response, request, SESSION_COOKIE, console.codec.seal(session),
               max_age=svc.config.console.session_ttl_s, secure=secure)
    clear_cookie(response, request, OIDC_COOKIE, secure=secure)
    return secure_headers(response)


@router.post("/console/signout")
async def signout(request: Request, svc: Services) -> Response:
    console = await console_of(svc)
    form = await request.form()
    session = console.codec.open(request.cookies.get(SESSION_COOKIE), Session)
    if session is None or not session.csrf_matches(str(form.get("csrf") or "")):
        return error_page(request, svc, console, 403, "refused: the form's CSRF token is missing or wrong")
    response = RedirectResponse(f"{base_path(request)}/console/signin", status_code=303)
    clear_cookie(response, request, SESSION_COOKIE, secure=is_tls(request, svc.config.gateway.trust_forwarded_for))
    return secure_headers(response)


# --- OIDC: authorization code + PKCE ------------------------------------------------------------------------

_endpoints: dict[str, tuple[float, dict[str, str]]] = {}


async def _issuer_endpoints(svc: GatewayServices) -> dict[str, str]:
    """authorization_endpoint and token_endpoint: configured, or from the issuer's discovery document (kept an
    hour)."""
    cfg, issuer = svc.config.console.oidc, svc.config.gateway.oidc.issuer
    if cfg.authorization_endpoint and cfg.token_endpoint:
        return {"authorization_endpoint": cfg.authorization_endpoint, "token_endpoint": cfg.token_endpoint}
    cached = _endpoints.get(issuer)
    if cached and time.monotonic() - cached[0] < 3600:
        return cached[1]
    async with httpx.AsyncClient(timeout=cfg.timeout_s) as client:
        response = await client.get(issuer.rstrip("/") + "/.well-known/openid-configuration")
        response.raise_for_status()
        document = response.json()
    found = {k: str(document[k]) for k in ("authorization_endpoint", "token_endpoint")}
    _endpoints[issuer] = (time.monotonic(), found)
    return found


def _callback_uri(request: Request, svc: GatewayServices) -> str:
    scheme = "https" if is_tls(request, svc.config.gateway.trust_forwarded_for) else request.url.scheme
    return f"{scheme}://{request.url.netloc}{base_path(request)}/console/oidc/callback"


@router.get("/console/oidc/start")
async def oidc_start(request: Request, svc: Services, next: str | None = Query(default=None, max_length=2000)
                     ) -> Response:
    console = await console_of(svc)
    if not _oidc_configured(svc):
        return error_page(request, svc, console, 404, "OIDC sign-in is not configured")
    try:
        endpoints = await _issuer_endpoints(svc)
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        return error_page(request, svc, console, 503, f"the OIDC issuer cannot be reached ({type(exc).__name__})",
                          {"Retry-After": "5"})
    cfg = svc.config.console.oidc
    state = OIDCState(state=secrets.token_urlsafe(32), nonce=secrets.token_urlsafe(32),
                      verifier=secrets.token_urlsafe(64), redirect_uri=_callback_uri(request, svc),
                      next=safe_next(next))
    challenge = base64.urlsafe_b64encode(hashlib.sha256(state.verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode({"response_type": "code", "client_id": cfg.client_id, "redirect_uri": state.redirect_uri,
                       "scope": " ".join(cfg.scopes), "state": state.state, "nonce": state.nonce,
                       "code_challenge": challenge, "code_challenge_method": "S256"})
    endpoint = endpoints["authorization_endpoint"]
    response = RedirectResponse(f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", status_code=303)
    set_cookie(response, request, OIDC_COOKIE, console.codec.seal(state), max_age=OIDC_TTL_S,
               secure=is_tls(request, svc.config.gateway.trust_forwarded_for), same_site="lax")
    return secure_headers(response)


@router.get("/console/oidc/callback")
async def oidc_callback(request: Request, svc: Services, code: str | None = Query(default=None, max_length=4096),
                        state: str | None = Query(default=None, max_length=256),
                        error: str | None = Query(default=None, max_length=256)) -> Response:
    console = await console_of(svc)
    pending = console.codec.open(request.cookies.get(OIDC_COOKIE), OIDCState, ttl_s=OIDC_TTL_S)
    if pending is None or not state or not secrets.compare_digest(pending.state, state):
        return error_page(request, svc, console, 400, "sign-in refused: unknown or expired OIDC state (start again)")
    if error or not code:
        return error_page(request, svc, console, 401, f"sign-in refused by the issuer: {error or 'no code'}")
    cfg = svc.config.console.oidc
    form: dict[str, Any] = {"grant_type": "authorization_code", "code": code, "redirect_uri": pending.redirect_uri,
                            "client_id": cfg.client_id, "code_verifier": pending.verifier}
    auth = (cfg.client_id, cfg.client_secret.get_secret_value()) if cfg.client_secret else None
    try:
        endpoints = await _issuer_endpoints(svc)
        async with httpx.AsyncClient(timeout=cfg.timeout_s) as client:
            answer = await client.post(endpoints["token_endpoint"], data=form, auth=auth,
                                       headers={"Accept": "application/json"})
        id_token = str(answer.json().get("id_token") or "") if answer.status_code == 200 else ""
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        return error_page(request, svc, console, 503, f"the OIDC issuer cannot be reached ({type(exc).__name__})",
                          {"Retry-After": "5"})
    if not id_token:
        return error_page(request, svc, console, 401, "sign-in refused: the issuer gave no ID token")
    # The chain verifies signature, issuer, audience and expiry; the nonce binds the token to this sign-in
    # (a token stolen from another sign-in cannot be replayed into this callback).
    try:
        nonce = jwt.decode(id_token, options={"verify_signature": False}).get("nonce")
    except jwt.PyJWTError:
        nonce = None
    if not isinstance(nonce, str) or not secrets.compare_digest(nonce, pending.nonce):
        return error_page(request, svc, console, 401, "sign-in refused: the ID token is not for this sign-in")
    try:
        principal = await svc.auth.authenticate(f"Bearer {id_token}")
    except Denied as exc:
        return error_page(request, svc, console, exc.status, exc.message, exc.headers)
    if principal.method != "oidc":
        return error_page(request, svc, console, 401, "sign-in refused: not a token of the configured issuer")
    return _signed_in(request, svc, console, Session(credential=id_token, method="oidc"), pending.next,
                      principal.actor, via_page=True)
