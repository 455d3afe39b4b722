"""What can go wrong talking to the Kubernetes API, mapped once (in ``kubernaut.cluster.api``).

Two families: the server answered with an error status (``ApiError`` and its subclasses, chosen by
the status), or it did not answer at all (``Unreachable``: after a write, its outcome is unknown).
``Unavailable`` marks what may succeed later (no answer, 429, 5xx): the only errors worth retrying.
"""

from __future__ import annotations

from typing import Any


class ClusterError(Exception):
    """Anything the cluster facade raises; ``status`` is the HTTP status when the server answered."""

    status: int | None = None


class Unavailable(ClusterError):
    """The API server could not serve the request now (unreachable, 429, 5xx): try again later."""


class ApiError(ClusterError):
    """A non-2xx answer, kept with its HTTP status and the server's own reason and message.

    ``ApiError(404, ...)`` builds the subclass of that status (``NotFound``), so ``except NotFound``
    catches every 404 however it was raised.
    """

    status: int

    def __new__(cls, status: int, *args: Any, **kwargs: Any) -> ApiError:
        if cls is ApiError:
            cls = error_class(status)
        return super().__new__(cls)

    def __init__(self, status: int, reason: str, message: str, method: str = "", path: str = "") -> None:
        self.status = status
        self.reason = reason
        self.message = message
        self.method = method
        self.path = path
        super().__init__(f"{method} {path}: HTTP {status} {reason}: {message}".strip())

    def __reduce__(self) -> tuple[Any, ...]:  # crosses process boundaries (Ray) with its fields
        return (type(self), (self.status, self.reason, self.message, self.method, self.path))

    @property
    def forbidden(self) -> bool:
        return self.status in (401, 403)

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def too_many(self) -> bool:
        return self.status == 429


class NotFound(ApiError):
    """404: the object (or the resource, or the verb on it) does not exist on this server."""


class Conflict(ApiError):
    """409: a precondition or resourceVersion no longer holds (reason Conflict), or AlreadyExists."""


class Forbidden(ApiError):
    """401/403: this identity may not do it (RBAC); permanent until someone changes the roles."""


class Invalid(ApiError):
    """400/422: the server rejected the request itself; repeating it changes nothing."""


class TooManyRequests(ApiError, Unavailable):
    """429: throttled, or an eviction a PodDisruptionBudget forbids right now."""


class ServerError(ApiError, Unavailable):
    """5xx: the server failed to answer usefully."""


class Unreachable(Unavailable):
    """No HTTP answer at all (connection refused, TLS failure, timeout): the outcome of a write is unknown."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out  # the caller's time is spent: not retried


def error_class(status: int) -> type[ApiError]:
    if status == 404:
        return NotFound
    if status == 409:
        return Conflict
    if status in (401, 403):
        return Forbidden
    if status in (400, 422):
        return Invalid
    if status == 429:
        return TooManyRequests
    if status >= 500:
        return ServerError
    return ApiError
