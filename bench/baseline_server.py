"""Baseline for bench/ingest.py: bare uvicorn, the same parsing (WebhookPayload) and the same commit
(kubernaut.storage.alerts.insert_webhook) into the same PostgreSQL — nothing else."""

from __future__ import annotations

import argparse
import json
import uuid

import uvicorn
from pydantic import SecretStr, ValidationError

from kubernaut.config.settings import StorageConfig
from kubernaut.models.alertmanager import WebhookPayload
from kubernaut.storage.alerts import insert_webhook
from kubernaut.storage.database import Database


def make_app(dsn: str):
    state: dict[str, Database] = {}

    async def send(send_fn, status: int, body: bytes) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send_fn({"type": "http.response.start", "status": status, "headers": headers})
        await send_fn({"type": "http.response.body", "body": body})

    async def app(scope, receive, send_fn):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    state["db"] = await Database.connect(StorageConfig(dsn=SecretStr(dsn), pool_max_size=20))
                    await send_fn({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await state["db"].close()
                    await send_fn({"type": "lifespan.shutdown.complete"})
                    return
        if scope["path"] == "/health":
            await send(send_fn, 200, b'{"status":"ok"}')
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        try:
            payload = WebhookPayload.model_validate(json.loads(b"".join(chunks)))
        except (ValueError, ValidationError):
            await send(send_fn, 422, b'{"error":"invalid"}')
            return
        request_id = uuid.uuid4().hex
        stored = await insert_webhook(state["db"].pool, payload, request_id)
        await send(send_fn, 200, json.dumps({"accepted": len(stored), "request_id": request_id}).encode())

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(make_app(args.dsn), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
