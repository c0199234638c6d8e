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


# The tags the public list is made of (web/review_list.py); anything else came from someone's text.
LIST_TAGS = {"ol", "li", "div", "span", "time", "p", "details", "summary", "a"}


@dataclass
class ShownReview:
    created_at: str
    name: str  # "" when shown as "Anonymous"
    rating: int
    comments: str


def latest_reviews(list_html: str) -> tuple[list[ShownReview], set[str]]:
    """The reviews the public list shows, as a person reads them, and every tag it contains.

    html.parser unescapes entities: text escaped correctly comes back exactly as typed, and
    text that was not escaped would come back as tags instead (so the test sees it)."""
    from html.parser import HTMLParser

    items: list[ShownReview] = []
    tags: set[str] = set()

    class Parser(HTMLParser):
        field: str | None = None
        current: dict | None = None

        def handle_starttag(self, tag, attrs):
            tags.add(tag)
            a = dict(attrs)
            classes = set((a.get("class") or "").split())
            if tag == "li" and "review" in classes:
                self.current = {"created_at": "", "name": "", "anon": False, "rating": 0, "comments": ""}
            elif self.current is None:
                return
            elif tag == "span" and "who" in classes:
                self.field, self.current["anon"] = "name", "anon" in classes
            elif tag == "span" and "stars" in classes:
                self.current["rating"] = int(a["aria-label"].split()[1])  # "Rated 4 out of 5"
            elif tag == "time":
                self.current["created_at"] = a["datetime"]
            elif tag == "p" and "comment" in classes:
                self.field = "comments"

        def handle_endtag(self, tag):
            if tag in ("span", "p") and self.field:
                self.field = None
            elif tag == "li" and self.current is not None:
                c = self.current
                items.append(ShownReview(c["created_at"], "" if c["anon"] else c["name"], c["rating"],
                                         c["comments"]))
                self.current = None

        def handle_data(self, data):
            if self.current is not None and self.field:
                self.current[self.field] += data

    Parser(convert_charrefs=True).feed(list_html)
    return items, tags
