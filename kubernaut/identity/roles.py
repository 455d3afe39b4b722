"""What each role may do: the authorizer of principals that carry roles (static tokens, OIDC, anonymous).

Kubernetes principals are authorized per request with a SubjectAccessReview instead (the ClusterRoles in
deploy/ phrase the same permissions in RBAC). A permission is a verb on a virtual resource of the
``kubernaut.ai`` API group (:class:`kubernaut.models.principal.Permission`); this table is the whole grant.
"""

from __future__ import annotations

from kubernaut.models.principal import Permission, Principal, Role

#: What a viewer reads (get/list), plus ``create analyses`` (/api/v1/analyze: analysis that never acts).
VIEWER_READS = frozenset({"incidents", "alerts", "analyses", "actions", "approvals", "jobs", "audit", "patterns",
                          "effectiveness", "contexts", "info", "openapi"})
READ_VERBS = frozenset({"get", "list"})


def role_allows(role: Role, permission: Permission, approve_namespaces: tuple[str, ...] = ()) -> bool:
    verb, resource = permission.verb, permission.resource
    if role is Role.ADMIN:
        return True
    if role is Role.INGEST:
        return verb == "create" and resource == "alerts"
    if role is Role.VIEWER:
        return (verb in READ_VERBS and resource in VIEWER_READS) or (verb == "create" and resource == "analyses")
    if role is Role.APPROVER:
        if resource != "approvals":
            return False
        if verb in READ_VERBS:
            return True  # an approver sees what waits for a decision
        if verb != "approve":
            return False
        # A cluster-scoped target (no namespace) needs "*": no namespace grant covers it.
        return "*" in approve_namespaces or (permission.namespace is not None
                                             and permission.namespace in approve_namespaces)
    return False


class RoleAuthorizer:
    """:class:`kubernaut.models.principal.Authorizer` from the principal's roles: allowed when any role allows."""

    async def allowed(self, principal: Principal, permission: Permission) -> bool:
        return any(role_allows(role, permission, principal.approve_namespaces) for role in principal.roles)
