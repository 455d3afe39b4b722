"""Slack's interactivity endpoint: Approve/Reject pressed on an approval message.

Nothing is decided unless the request carries a valid Slack signature (401 otherwise, and for every request
while no signing secret is configured: fail closed), was not seen before (409 for a replay), comes from a Slack
user that ``notifications.slack.users`` maps to a Kubernetes identity, and that identity holds ``approve
approvals`` in the approval's namespace — the same SubjectAccessReview and the same decision path as ``POST
/api/v1/approvals/{id}/approve`` (self-approval, two-person rule, expiry). A refusal is told to the user alone
(chat.postEphemeral) and audited. The message itself is updated in place by the notifications deployment once
the approval is decided (the ``approval.decided`` notification), whichever way it was decided.
"""

from __future__ import annotations

import logging
from datetime import timezone

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from kubernaut.gateway.routes.approvals import _audit_refusal, decide_remote, source_of
from kubernaut.gateway.services import GatewayServices, Services
from kubernaut.models.principal import Permission, Principal
from kubernaut.observability import metrics
from kubernaut.slack.interactions import (
    MAX_BODY_BYTES,
    Interaction,
    InvalidInteraction,
    needs_email,
    parse,
    principal_for,
    replay_digest,
    verified,
)
from kubernaut.slack.webapi import SlackApp, SlackError
from kubernaut.storage import approvals as approval_store
from kubernaut.storage import slack as slack_store

logger = logging.getLogger(__name__)

router = APIRouter()

_apps: dict[int, SlackApp] = {}


def _slack(svc: GatewayServices) -> SlackApp | None:
    config = svc.config.notifications.slack
    if not config.enabled:
        return None
    if id(config) not in _apps:
        _apps[id(config)] = SlackApp(config)
    return _apps[id(config)]


@router.post("/api/v1/integrations/slack/interactions", summary="Slack interactivity (Approve/Reject buttons)",
             include_in_schema=True)
async def interactions(request: Request, svc: Services) -> Response:
    """Authenticated by Slack's request signature (``X-Slack-Signature``, ``X-Slack-Request-Timestamp``); the
    Slack user decides as the Kubernetes identity ``notifications.slack.users`` maps it to."""
    slack = svc.config.notifications.slack
    secret = slack.signing_secret.get_secret_value() if slack.signing_secret else ""
    if not secret:
        metrics.auth_denied("slack_unconfigured")
        return JSONResponse({"error": "Slack interactions are disabled: notifications.slack.signing_secret is not "
                                      "set"}, status_code=401)
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return JSONResponse({"error": f"body: larger than {MAX_BODY_BYTES} bytes"}, status_code=413)
    timestamp = request.headers.get("x-slack-request-timestamp")
    signature = request.headers.get("x-slack-signature")
    if not verified(secret, body, timestamp, signature):
        metrics.auth_denied("slack_signature")
        return JSONResponse({"error": "unauthorized: missing, invalid or stale Slack signature"}, status_code=401,
                            headers={"WWW-Authenticate": "X-Slack-Signature"})
    assert timestamp is not None and signature is not None  # verified() refuses requests without them
    if not await slack_store.accept_interaction(svc.db.pool, replay_digest(timestamp, signature)):
        metrics.auth_denied("slack_replay")
        return JSONResponse({"error": "this Slack request was already handled (replay)"}, status_code=409)
    try:
        press = parse(body)
    except InvalidInteraction as exc:
        return JSONResponse({"error": str(exc), "problems": [{"field": exc.field, "message": str(exc)}]},
                            status_code=422)
    await _handle(svc, request, press)
    return Response(status_code=200)


async def _handle(svc: GatewayServices, request: Request, press: Interaction) -> None:
    users = svc.config.notifications.slack.users
    app = _slack(svc)
    email = await app.email_of(press.user_id) if app is not None and needs_email(users, press.user_id) else None
    principal = principal_for(users, press.user_id, email)
    approval = await approval_store.get(svc.db.pool, press.approval_id)
    source = source_of(request, svc.config.gateway)
    source = {**source, "user_agent": f"slack:{press.user_id}"}
    if approval is None:
        await _tell(app, press, f"approval {press.approval_id} not found")
        return
    if principal is None:
        metrics.auth_denied("slack_unmapped")
        nobody = Principal(name=f"slack:{press.user_id}", method="anonymous")
        await _audit_refusal(svc, approval, nobody, source, press.approve, 403, "unmapped",
                             "the Slack user is not mapped to a Kubernetes identity (notifications.slack.users)")
        await _tell(app, press, "not allowed: your Slack user is not mapped to a Kubernetes identity "
                                "(ask an admin to add it to notifications.slack.users)")
        return
    namespace = approval.target.get("namespace") or None
    permission = Permission(verb="approve", resource="approvals", namespace=namespace, cluster=svc.config.cluster_name)
    try:
        await svc.check(principal, permission)
    except HTTPException as exc:
        if exc.status_code == 403:
            await _audit_refusal(svc, approval, principal, source, press.approve, 403, "forbidden",
                                 f"needs {permission.describe()}")
            where = f"ns/{namespace}" if namespace else "the whole cluster"
            await _tell(app, press, f"not allowed: {principal.name} needs approve in {where}")
        else:
            await _tell(app, press, "cannot check your permission right now; try again in a moment")
        return
    by = press.user_name or press.user_id
    outcome = await decide_remote(svc.deployments.orchestrator, press.approval_id, press.approve, principal,
                                  source, f"via Slack by {by}", None)
    if "error" in outcome:
        now = await approval_store.get(svc.db.pool, press.approval_id)
        told = str(outcome["error"])
        if now is not None and now.decided_by:
            when = now.decided_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if now.decided_at else ""
            outcome_word = "approved" if now.status == "used" else now.status
            told = f"approval {now.id} was already {outcome_word} by {now.decided_by} {when}".rstrip()
        await _tell(app, press, told)
        return
    decided = outcome.get("approval") or {}
    if isinstance(decided, dict) and decided.get("status") == "pending":
        await _tell(app, press, f"your approval of {press.approval_id} is recorded; a second, distinct approver "
                                "is needed")


async def _tell(app: SlackApp | None, press: Interaction, text: str) -> None:
    """An ephemeral message only the presser sees, in the channel of the button."""
    if app is None or press.channel_id is None:
        logger.info("cannot tell Slack user %s (%s): no Slack app or channel", press.user_id, text)
        return
    try:
        await app.ephemeral(press.channel_id, press.user_id, text)
    except SlackError as exc:
        logger.warning("chat.postEphemeral failed: %s", exc)
