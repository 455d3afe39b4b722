"""AlertManager webhook (version 4) in all the shapes real senders produce.

Tolerant where senders differ (missing per-alert ``status``/``fingerprint``, Go timestamps with
nanoseconds, ``endsAt`` of year 1 on firing alerts, newer fields), strict where bad input could
hurt (sizes, types, required ``alertname``). Unknown extra fields are kept out of our models.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

AlertStatus = Literal["firing", "resolved"]


def _storable(value: str) -> str:
    """NUL cannot be stored (PostgreSQL text and jsonb refuse it) and has no business in an alert: refused by
    name here, or one such body would fail the shared INSERT of every webhook committed with it. Other control
    characters are kept as data; they are neutralised where text is displayed."""
    if "\x00" in value:
        raise ValueError("NUL character")
    return value


Text = Annotated[str, AfterValidator(_storable)]
LabelName = Annotated[str, StringConstraints(min_length=1, max_length=256), AfterValidator(_storable)]
LabelValue = Annotated[str, StringConstraints(max_length=16_384), AfterValidator(_storable)]
Labels = dict[LabelName, LabelValue]

# Kubernetes object names (https://kubernetes.io/docs/concepts/overview/working-with-objects/names/):
# namespaces are DNS-1123 labels (≤ 63), most other objects DNS-1123 subdomains (≤ 253). The labels
# below are the ones Kubernaut interprets as object names (kubernaut/processing/alert_target.py, owners.py); a value
# that is not a name cannot be a target, and the processor must never meet one it cannot turn into a
# ResourceRef (one such row used to stall every alert behind it).
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
NAMESPACE_LABELS = ("namespace", "exported_namespace")
OBJECT_NAME_LABELS = ("pod", "exported_pod", "node", "deployment", "statefulset", "daemonset", "cronjob",
                      "job_name", "horizontalpodautoscaler", "persistentvolumeclaim", "poddisruptionbudget")

# Timestamps the sender may claim, relative to receipt: AlertManager's clock may run ahead of ours, but not by a
# day; nothing Kubernaut handles started before 2000. Outside this window a timestamp is refused by name
# (AlertManager does not retry a 4xx), never stored: the latest state of an alert is chosen by time.
MAX_CLOCK_AHEAD = timedelta(days=1)
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)


def check_object_names(labels: dict[str, str]) -> None:
    for key in NAMESPACE_LABELS:
        value = labels.get(key)
        if value and (len(value) > 63 or not DNS1123_LABEL.match(value)):
            raise ValueError(f"labels.{key} must be a Kubernetes namespace name (DNS-1123 label, at most 63 "
                             f"characters): {value[:64]!r}")
    for key in OBJECT_NAME_LABELS:
        value = labels.get(key)
        if value and (len(value) > 253 or not DNS1123_SUBDOMAIN.match(value)):
            raise ValueError(f"labels.{key} must be a Kubernetes object name (DNS-1123 subdomain, at most 253 "
                             f"characters): {value[:64]!r}")

_GO_TIME = re.compile(r"^(?P<base>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d+))?(?P<tz>Z|[+-]\d{2}:\d{2})$")


def parse_go_time(value: object) -> datetime | None:
    """RFC3339 as Go writes it (up to nanoseconds); year 1 means "unset" and becomes None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        match = _GO_TIME.match(value.strip())
        if not match:
            raise ValueError(f"not an RFC3339 timestamp: {value[:64]!r}")
        frac = (match["frac"] or "0")[:6].ljust(6, "0")
        tz = "+00:00" if match["tz"] == "Z" else match["tz"]
        parsed = datetime.fromisoformat(f"{match['base']}.{frac}{tz}")
    else:
        raise ValueError("timestamp must be a string")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    if parsed.year <= 1:
        return None
    try:
        # 9999-12-31T23:59:59-01:00 is year 10000 in UTC: OverflowError, which pydantic does not turn into a
        # validation error by itself (it was a 500).
        return parsed.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"timestamp out of range: {value!s:.64}") from None


def check_window(value: datetime | None, field: str, now: datetime) -> None:
    if value is None:
        return
    if value < EARLIEST:
        raise ValueError(f"{field} {value.isoformat()} is before {EARLIEST.year}")
    if value > now + MAX_CLOCK_AHEAD:
        raise ValueError(f"{field} {value.isoformat()} is more than {MAX_CLOCK_AHEAD.days} day ahead of the "
                         f"receiver's clock ({now.isoformat(timespec='seconds')})")


def label_fingerprint(labels: dict[str, str]) -> str:
    """Stand-in for AlertManager's fingerprint when an old sender omits it: stable over the label set."""
    canonical = "\x00".join(f"{k}\x01{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class WebhookAlert(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: AlertStatus | None = None
    labels: Labels
    annotations: Labels | None = None
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: Text | None = Field(default=None, alias="generatorURL", max_length=8192)
    fingerprint: Text | None = Field(default=None, max_length=64)

    @field_validator("starts_at", "ends_at", mode="before")
    @classmethod
    def _go_time(cls, value: object) -> datetime | None:
        return parse_go_time(value)

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _in_window(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None and info.field_name == "starts_at":
            raise ValueError("startsAt must be a real timestamp")
        context = info.context or {}
        check_window(value, "startsAt" if info.field_name == "starts_at" else "endsAt",
                     context.get("received_at") or datetime.now(timezone.utc))
        return value

    @field_validator("labels")
    @classmethod
    def _alertname_required(cls, value: dict[str, str]) -> dict[str, str]:
        if not value.get("alertname"):
            raise ValueError("labels.alertname is required")
        check_object_names(value)
        return value


class WebhookPayload(BaseModel):
    """Top-level AlertManager webhook body."""

    model_config = ConfigDict(extra="ignore")

    version: Literal["4"] = "4"
    status: AlertStatus
    receiver: Text = Field(max_length=1024)
    alerts: list[WebhookAlert] = Field(min_length=1)
    group_key: Text | None = Field(default=None, alias="groupKey", max_length=16_384)
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts", ge=0)
    group_labels: Labels | None = Field(default=None, alias="groupLabels")
    common_labels: Labels | None = Field(default=None, alias="commonLabels")
    common_annotations: Labels | None = Field(default=None, alias="commonAnnotations")
    route_labels: Labels | None = Field(default=None, alias="routeLabels")
    external_url: Text | None = Field(default=None, alias="externalURL", max_length=8192)
    notification_reason: Text | None = Field(default=None, max_length=256)

    @field_validator("version", mode="before")
    @classmethod
    def _version_string(cls, value: object) -> object:
        # Some proxies re-serialise the version as a number.
        return str(value) if isinstance(value, int) else value

    @model_validator(mode="after")
    def _fill_alert_defaults(self) -> WebhookPayload:
        now = datetime.now(timezone.utc)
        for alert in self.alerts:
            if alert.status is None:
                # Older senders: an endsAt in the past means resolved; otherwise the group status decides
                # only when it says firing (a "resolved" group contains only resolved alerts).
                if alert.ends_at is not None and alert.ends_at <= now:
                    alert.status = "resolved"
                else:
                    alert.status = "firing" if self.status == "firing" or alert.ends_at else self.status
            if not alert.fingerprint:
                alert.fingerprint = label_fingerprint(alert.labels)
        return self
