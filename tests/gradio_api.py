"""A small client for the form's HTTP API, as any script would call it:
POST /gradio_api/call/<api_name>, then read the event stream for the result."""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx


@dataclass
class CallResult:
    ok: bool
    data: list | None = None
    error: str | None = None
    status: int = 200


def call(base_url: str, api_name: str, data: list, *, client: httpx.Client | None = None,
         timeout: float = 30.0) -> CallResult:
    return call_raw(base_url, api_name, json.dumps({"data": data}).encode(), client=client, timeout=timeout)


def call_raw(base_url: str, api_name: str, body: bytes, *, client: httpx.Client | None = None,
             timeout: float = 30.0) -> CallResult:
    """POST `body` as it is (hostile JSON included), then read the event stream for the result."""
    own = client is None
    client = client or httpx.Client(timeout=timeout)
    try:
        r = client.post(f"{base_url}/gradio_api/call/{api_name}", content=body,
                        headers={"content-type": "application/json"})
        if r.status_code != 200:
            return CallResult(ok=False, error=r.text, status=r.status_code)
        event_id = r.json()["event_id"]
        event = None
        with client.stream("GET", f"{base_url}/gradio_api/call/{api_name}/{event_id}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    payload = line.split(":", 1)[1].strip()
                    parsed = json.loads(payload) if payload and payload != "null" else None
                    if event == "complete":
                        return CallResult(ok=True, data=parsed)
                    message = parsed.get("error") if isinstance(parsed, dict) else parsed
                    return CallResult(ok=False, error=str(message))
        return CallResult(ok=False, error="stream ended without a result")
    finally:
        if own:
            client.close()


def add_review(base_url: str, name, rating, comments, **kwargs) -> CallResult:
    return call(base_url, "add_review", [name, rating, comments], **kwargs)


def overview(base_url: str, **kwargs) -> CallResult:
    return call(base_url, "overview", [], **kwargs)
