"""web.http_limits.json_error: the one JSON reply every refusing middleware sends."""

import json

from tests.async_run import run_async
from web.http_limits import json_error


def _sent(**kwargs) -> list[dict]:
    messages: list[dict] = []

    async def send(message):
        messages.append(message)

    run_async(json_error(send, **kwargs))
    return messages


def test_a_whole_reply_with_its_length_and_extra_headers():
    start, body = _sent(status=429, message="Wait «5» minutes.", headers=[(b"retry-after", b"301")])
    headers = dict(start["headers"])
    assert start["type"] == "http.response.start" and start["status"] == 429
    assert headers[b"content-type"] == b"application/json" and headers[b"retry-after"] == b"301"
    assert int(headers[b"content-length"]) == len(body["body"]), "the length of the encoded body, not of the text"
    assert json.loads(body["body"]) == {"error": "Wait «5» minutes."}
    assert not body.get("more_body", False)


def test_the_key_gradios_login_form_reads():
    _, body = _sent(status=429, message="Too many wrong passwords.", key="detail")
    assert json.loads(body["body"]) == {"detail": "Too many wrong passwords."}
