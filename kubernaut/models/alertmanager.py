"""AlertManager webhook (version 4) in all the shapes real senders produce.

Tolerant where senders differ (missing per-alert ``status``/``fingerprint``, Go timestamps with
nanoseconds, ``endsAt`` of year 1 on firing alerts, newer fields), strict where bad input could
hurt (sizes, types, required ``alertname``). Unknown extra fields are kept out of our models.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

AlertStatus = Literal["firing", "resolved"]

LabelName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
LabelValue = Annotated[str, StringConstraints(max_length=16_384)]
Labels = dict[LabelName, LabelValue]

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
    return parsed.astimezone(timezone.utc)


def _no_nul(mapping: dict[str, str]) -> dict[str, str]:
    """NUL cannot be stored (PostgreSQL text/jsonb) and has no business in a label: refuse it by name.
    Other control characters are kept as data; they are neutralised where text is displayed."""
    for key, value in mapping.items():
        if "\x00" in key or "\x00" in value:
            raise ValueError(f"NUL character in {key[:64]!r}")
    return mapping


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
    generator_url: str | None = Field(default=None, alias="generatorURL", max_length=8192)
    fingerprint: str | None = Field(default=None, max_length=64)

    @field_validator("starts_at", "ends_at", mode="before")
    @classmethod
    def _go_time(cls, value: object) -> datetime | None:
        return parse_go_time(value)

    @field_validator("starts_at")
    @classmethod
    def _starts_required(cls, value: datetime | None) -> datetime:
        if value is None:
            raise ValueError("startsAt must be a real timestamp")
        return value

    @field_validator("labels")
    @classmethod
    def _alertname_required(cls, value: dict[str, str]) -> dict[str, str]:
        if not value.get("alertname"):
            raise ValueError("labels.alertname is required")
        return _no_nul(value)

    @field_validator("annotations")
    @classmethod
    def _annotations_storable(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else _no_nul(value)


class WebhookPayload(BaseModel):
    """Top-level AlertManager webhook body."""

    model_config = ConfigDict(extra="ignore")

    version: Literal["4"] = "4"
    status: AlertStatus
    receiver: str = Field(max_length=1024)
    alerts: list[WebhookAlert] = Field(min_length=1)
    group_key: str | None = Field(default=None, alias="groupKey", max_length=16_384)
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts", ge=0)
    group_labels: Labels | None = Field(default=None, alias="groupLabels")
    common_labels: Labels | None = Field(default=None, alias="commonLabels")
    common_annotations: Labels | None = Field(default=None, alias="commonAnnotations")
    route_labels: Labels | None = Field(default=None, alias="routeLabels")
    external_url: str | None = Field(default=None, alias="externalURL", max_length=8192)
    notification_reason: str | None = Field(default=None, max_length=256)

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
