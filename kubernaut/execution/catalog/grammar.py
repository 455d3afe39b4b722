"""Grammars of the Kubernetes API server as pydantic types: names, labels, selectors, quantities."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StringConstraints

from kubernaut.execution.catalog.hygiene import reject_controls, reject_whitespace

# Grammars of the Kubernetes API server (apimachinery validation), so a value that passes here is
# not rejected later by the API server halfway through a multi-step action.
DNS_LABEL_RE = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
DNS_SUBDOMAIN_RE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_KEY_RE = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE_RE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"
# Kubernetes resource.Quantity, unsigned: limits and sizes are never negative.
QUANTITY_RE = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?$"
# Label-selector syntax (`a=b,c!=d,e in (f,g),!h`) as a character allow-list: it cannot carry anything
# but a selector into the LIST query string.
LABEL_SELECTOR_RE = r"^[A-Za-z0-9._/=!,() -]{1,256}$"
PERCENT_RE = r"^(100|[1-9]?[0-9])%$"
KIND_RE = r"^[A-Z][A-Za-z0-9]{0,62}$"

# Free text (reasons shown to humans): newlines and tabs are legitimate there, nothing else is.
SafeText = Annotated[str, BeforeValidator(reject_controls(allow="\n\t"))]
DnsLabel = Annotated[str, StringConstraints(max_length=63, pattern=DNS_LABEL_RE), BeforeValidator(reject_whitespace)]
LabelKey = Annotated[str, StringConstraints(max_length=317, pattern=LABEL_KEY_RE), BeforeValidator(reject_whitespace)]
LabelSelector = Annotated[
    str,
    StringConstraints(min_length=1, max_length=256, pattern=LABEL_SELECTOR_RE),
    BeforeValidator(reject_controls()),
    Field(examples=["app=web,tier!=cache", "app in (a,b),!legacy"]),
]
LabelValue = Annotated[
    str, StringConstraints(max_length=63, pattern=LABEL_VALUE_RE), BeforeValidator(reject_whitespace)
]
Quantity = Annotated[
    str,
    StringConstraints(max_length=32, pattern=QUANTITY_RE),
    BeforeValidator(reject_whitespace),
    Field(examples=["512Mi", "2Gi", "500m", "1.5"]),
]


def _int_or_percent(value: Any) -> Any:
    """One clear message instead of one per union member; digit strings become ints because
    YAML and LLMs write "1" as often as 1."""
    if isinstance(value, bool):
        raise ValueError("must be a non-negative integer or a percentage such as '25%'")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str):
        reject_whitespace(value)
        if value.isascii() and value.isdigit() and len(value) <= 6:
            return int(value)
        if re.fullmatch(PERCENT_RE.strip("^$"), value):
            return value
    raise ValueError("must be a non-negative integer or a percentage such as '25%'")


Percent = Annotated[str, StringConstraints(max_length=4, pattern=PERCENT_RE), BeforeValidator(reject_whitespace)]
IntOrPercent = Annotated[
    Annotated[int, Field(ge=0, le=100_000)] | Percent,
    BeforeValidator(_int_or_percent),
    Field(examples=[1, "25%"]),
]
