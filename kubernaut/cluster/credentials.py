"""The bearer token a kubeconfig gives its user, for clients that call Kubernaut as that user.

Kubernaut's gateway checks such a token with a TokenReview (``gateway.kubernetes``), so the ``kubernaut`` CLI can
authenticate with the credentials ``kubectl`` uses: a static token, a token file, an exec plugin (EKS, GKE,
OIDC login helpers) or an auth provider, as the kubernetes client resolves them. Client certificates prove
nothing to Kubernaut (its TLS is not the API server's) and are refused with that reason.
"""

from __future__ import annotations

from pathlib import Path


class NoBearerToken(ValueError):
    """The kubeconfig's user has no bearer token Kubernaut could check."""


def kubeconfig_bearer(path: Path | None = None, context: str | None = None) -> str:
    """The bearer token of ``context`` (default: the current one) in ``path`` (default: ``$KUBECONFIG``, else
    ``~/.kube/config``)."""
    # Imported here: the CLI imports this module for every command, and the client is slow to import.
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    cfg = client.Configuration()
    try:
        config.load_kube_config(config_file=str(path) if path else None, context=context,
                                client_configuration=cfg, persist_config=False)
    except (ConfigException, OSError, ValueError) as exc:
        raise NoBearerToken(f"kubeconfig {path or '(default)'} unusable: {exc}") from None
    header = (cfg.api_key or {}).get("BearerToken") or (cfg.api_key or {}).get("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        reason = "client certificates" if cfg.cert_file else "no token"
        raise NoBearerToken(f"the kubeconfig's user has {reason}; Kubernaut needs a bearer token "
                            "(a ServiceAccount token, an OIDC or exec-plugin token), or use --token")
    return token.strip()
