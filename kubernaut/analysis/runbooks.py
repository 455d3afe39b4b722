"""Runbook guidance per alert name (packaged data, see runbooks.yaml)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field


class Runbook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kube_prometheus: bool = False
    group: str | None = None
    severity: str | None = None
    summary: str = ""
    labels: list[str] = Field(default_factory=list)
    runbook_url: str | None = None
    diagnosis: list[str] = Field(default_factory=list)
    mitigation: list[str] = Field(default_factory=list)
    hint: str | None = None


class _RunbookFile(BaseModel):
    version: int
    alerts: dict[str, Runbook]


@lru_cache(maxsize=1)
def runbooks() -> dict[str, Runbook]:
    text = resources.files("kubernaut.analysis").joinpath("runbooks.yaml").read_text(encoding="utf-8")
    return _RunbookFile.model_validate(yaml.safe_load(text)).alerts


def runbook(alertname: str) -> Runbook | None:
    return runbooks().get(alertname)
