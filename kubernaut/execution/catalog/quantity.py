"""Kubernetes resource quantities as numbers, so caps (max_limit, max_size) can be enforced."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from kubernaut.execution.catalog.hygiene import safe_repr

_SUFFIXES: dict[str, Decimal] = {
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY_PARTS = re.compile(r"([0-9.]+)([eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?")


def parse_quantity(text: str) -> Decimal:
    """Value of a Kubernetes quantity in base units (bytes, cores).

    Own implementation rather than kubernetes.utils so parameter validation does not import the
    whole client; caps (max_limit, max_size) can only be enforced on numbers, not on strings.
    """
    match = _QUANTITY_PARTS.fullmatch(text)
    if match is None:
        raise ValueError(f"not a Kubernetes quantity: {safe_repr(text)}")
    number, suffix = match.group(1), match.group(2) or ""
    try:
        value = Decimal(number)
        if suffix[:1] in ("e", "E") and len(suffix) > 1:
            return value.scaleb(int(suffix[1:]))
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"not a Kubernetes quantity: {safe_repr(text)}") from exc
    return value * _SUFFIXES[suffix]

