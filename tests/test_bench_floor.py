"""The benchmark floor (bench/noop_app.py) is the form's own page over a store that does nothing:
it must keep answering with the same outputs as the form, or `bench/run_all.py --floor` measures something else."""

import pytest

from shared.config import load_config
from shared.store import Store

pytestmark = pytest.mark.slow  # builds the Gradio page twice


def _handlers(demo):
    return {fn.api_name: fn.fn for fn in demo.fns.values() if fn.api_name in ("add_review", "overview")}


def test_the_floor_returns_what_the_form_returns(tmp_path):
    from bench.noop_app import NoopStore
    from web.app import build_app

    config = load_config({"FEEDBACK_DATA_DIR": str(tmp_path), "FEEDBACK_RATE_LIMIT_PER_MINUTE": "0"})
    store = Store(config.db_path)
    try:
        form, floor = _handlers(build_app(config, store)), _handlers(build_app(config, NoopStore()))
        assert set(form) == set(floor) == {"add_review", "overview"}

        class Request:
            class client:
                host = "127.0.0.1"

        for name, args in (("overview", ()), ("add_review", ("Sam", 4, "fine", Request()))):
            ours, theirs = form[name](*args), floor[name](*args)
            assert len(ours) == len(theirs)
            assert [type(x) for x in ours] == [type(x) for x in theirs], name
    finally:
        store.close()
