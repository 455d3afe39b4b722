"""Who is calling and what it may do: authentication methods, the chain that tries them, role grants.

:mod:`~kubernaut.identity.chain` turns an ``Authorization`` header into a
:class:`~kubernaut.models.principal.Principal` and checks each
:class:`~kubernaut.models.principal.Permission`; :mod:`~kubernaut.identity.static_tokens` checks hashed
static tokens; :mod:`~kubernaut.identity.roles` maps roles to permissions.
"""
