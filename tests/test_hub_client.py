"""The worker's hold on the huggingface_hub client: public API only, and a loud failure
if an upgrade changes what the worker relies on (its HTTP timeouts)."""

import huggingface_hub

from worker.hub import HTTP_TIMEOUT, _install_http_timeouts


def test_the_hub_session_gets_our_timeouts_through_the_public_api():
    assert callable(huggingface_hub.set_client_factory) and callable(huggingface_hub.get_session), (
        "huggingface_hub no longer exports set_client_factory/get_session: worker.hub cannot set its "
        "HTTP timeouts, and a stalled connection would hang the worker")
    default_hooks = huggingface_hub.get_session().event_hooks["request"]
    _install_http_timeouts()
    try:
        session = huggingface_hub.get_session()
        timeout = session.timeout
        assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (
            HTTP_TIMEOUT["connect"], HTTP_TIMEOUT["read"], HTTP_TIMEOUT["write"], HTTP_TIMEOUT["pool"])
        # The library's own request hooks are kept (user agent, token handling).
        assert [h.__name__ for h in session.event_hooks["request"]] == [h.__name__ for h in default_hooks]
        assert session.follow_redirects
    finally:
        huggingface_hub.set_client_factory(huggingface_hub.utils._http.default_client_factory)
