"""Non-mutating actions. They exist in the catalog so that "look closer" and "tell a human" are
choices the analysis can make explicitly, instead of inventing a mutation when unsure."""

from __future__ import annotations

ANY_KIND = ("*",)












