"""A NUL in a query or path is a 422 naming the field, before any route or the database sees it."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from kubernaut.gateway.query_guard import QueryGuard

app = FastAPI()
app.add_middleware(QueryGuard)
seen: list[str] = []


@app.get("/items")
def items(namespace: str = "") -> dict[str, str]:
    seen.append(namespace)
    return {"namespace": namespace}


def test_a_nul_in_a_query_value_or_name_or_path_is_refused_and_never_reaches_the_route() -> None:
    client = TestClient(app)
    for url, field in (("/items?namespace=a%00b", "query.namespace"), ("/items?x%00y=1", "query.x\\0y"),
                       ("/items%00", "path")):
        answer = client.get(url)
        assert answer.status_code == 422, url
        assert answer.json()["problems"][0]["field"] == field, answer.json()
    assert seen == []
    assert client.get("/items?namespace=shop").json() == {"namespace": "shop"}  # ordinary input passes
    assert client.get("/items?namespace=%2500").json() == {"namespace": "%00"}  # an escaped percent is not a NUL
