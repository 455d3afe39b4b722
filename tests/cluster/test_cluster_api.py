"""The cluster facade's error mapping and retries (kubernaut.cluster.api), without a server."""

from __future__ import annotations

from typing import Any

import pytest

from kubernaut.cluster.api import ClusterAPI, api_error
from kubernaut.cluster.errors import (
    ApiError,
    ClusterError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ServerError,
    TooManyRequests,
    Unavailable,
    Unreachable,
)


class ScriptedAPI(ClusterAPI):
    """Answers each exchange from a script: an exception to raise or a payload to return."""

    def __init__(self, script: list[Any]) -> None:
        super().__init__(None, retry_delay_s=0)  # type: ignore[arg-type]
        self.script = script
        self.sent: list[str] = []

    def _send(self, method: str, path: str, *_: Any, **__: Any) -> Any:
        self.sent.append(method)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


@pytest.mark.parametrize(("status", "cls"), [
    (404, NotFound), (409, Conflict), (401, Forbidden), (403, Forbidden), (400, Invalid), (422, Invalid),
    (429, TooManyRequests), (500, ServerError), (503, ServerError), (405, ApiError),
])
def test_statuses_map_to_one_hierarchy(status: int, cls: type[ApiError]) -> None:
    err = api_error(status, "Reason", b'{"kind": "Status", "reason": "FromBody", "message": "said the server"}',
                    "GET", "/api/v1/pods")
    assert type(err) is cls and err.status == status
    assert err.reason == "FromBody" and err.message == "said the server"
    assert isinstance(err, Unavailable) is (status == 429 or status >= 500)


def test_reads_are_retried_on_unavailable_answers() -> None:
    api = ScriptedAPI([ServerError(503, "ServiceUnavailable", "etcd"), b'{"items": []}'])
    assert api.call("GET", "/api/v1/pods") == {"items": []}
    assert api.sent == ["GET", "GET"]
    api = ScriptedAPI([Unreachable("refused"), b"{}"])
    assert api.call("GET", "/api/v1/pods") == {}


def test_writes_and_timeouts_and_refusals_are_never_retried() -> None:
    for method, error in [("POST", ServerError(500, "InternalError", "etcd")),
                          ("PATCH", Unreachable("refused")),
                          ("GET", Unreachable("read timed out", timed_out=True)),
                          ("GET", Forbidden(403, "Forbidden", "no")),
                          ("GET", NotFound(404, "NotFound", "gone"))]:
        api = ScriptedAPI([error, b"{}"])
        with pytest.raises(type(error)):
            api.call(method, "/api/v1/namespaces/x/pods")
        assert api.sent == [method]


def test_retries_are_bounded() -> None:
    api = ScriptedAPI([TooManyRequests(429, "TooManyRequests", "slow down")] * 3)
    with pytest.raises(TooManyRequests):
        api.call("GET", "/api/v1/pods")
    assert len(api.sent) == 1 + api.read_retries


def test_an_answer_that_is_not_json_is_an_error() -> None:
    with pytest.raises(ClusterError, match="not JSON"):
        ScriptedAPI([b"<html>"]).call("GET", "/api/v1/pods")
