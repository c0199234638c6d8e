"""Part 2 of the bench smoke runs (tests/test_bench_smoke.py says why they are split)."""

import pytest

from tests.test_bench_smoke import part, run_smoke

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.parametrize(("script", "extra"), part(1))
def test_bench_script_runs_at_a_tiny_size(script, extra):
    run_smoke(script, extra)
