"""Benches that cannot rot: every bench script runs at a tiny size (`--smoke`), and none reaches into
the product's private names or replaces a product function.

The convention (bench/README.md): every `bench/*.py` whose name does not start with `_` is a script
that accepts `--smoke` (tiny, bounded, exit 0 on success); a new script joins this test by existing.
A mode of a script that its plain `--smoke` does not run is listed in MODES (incremental.py's
`--smoke` runs its three modes itself).
Timing is never asserted: the scripts print tables, this only checks that they still run.

The runs are split over this file and test_bench_smoke_part2/3.py (`part(i)`), so that pytest-xdist,
which keeps a file's tests in one process, spreads the ~10 minutes of them over its processes."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.required import need

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # they start servers, workers, the test Hub

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if not p.name.startswith("_"))
PRODUCT = ("shared", "web", "worker")
NEEDS_PODMAN = {"container.py"}
# Modes a script's plain --smoke does not cover: (script, extra arguments).
MODES = [("run_all.py", ("--floor", "--spam-checks"))]
PARTS = 3
# Seconds a run took on a busy 2-core machine, to balance the parts; a script not listed counts as
# DEFAULT_SECONDS (a new bench joins a part by existing).
SECONDS = {"page_weight.py": 100, "run_all.py --floor --spam-checks": 90, "run_all.py": 70,
           "login_throttle.py": 70, "log_volume.py": 60, "incremental.py": 40}
DEFAULT_SECONDS = 15


def _runs() -> list[tuple[str, tuple[str, ...]]]:
    return [(s, ()) for s in SCRIPTS] + MODES


def _run_id(script: str, extra: tuple[str, ...]) -> str:
    return " ".join((script, *extra))


def part(index: int) -> list:
    """The runs of part `index` (0-based): the longest first, each to the part with the least so far."""
    load = [0] * PARTS
    chosen: list[list] = [[] for _ in range(PARTS)]
    runs = sorted(_runs(), key=lambda r: (-SECONDS.get(_run_id(*r), DEFAULT_SECONDS), _run_id(*r)))
    for script, extra in runs:
        k = load.index(min(load))
        load[k] += SECONDS.get(_run_id(script, extra), DEFAULT_SECONDS)
        chosen[k].append(pytest.param(script, extra, id=_run_id(script, extra)))
    return chosen[index]


def _product_aliases(tree: ast.AST) -> dict[str, str]:
    """local name -> product module, for `import shared.db as db`, `from shared import db`..."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in PRODUCT:
                    aliases[a.asname or a.name.split(".")[0]] = a.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PRODUCT:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    return aliases


def test_no_bench_uses_a_private_name_of_the_product_or_patches_it():
    problems = []
    for name in SCRIPTS + ["_common.py"]:
        path = BENCH / name
        tree = ast.parse(path.read_text(), str(path))
        aliases = _product_aliases(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PRODUCT:
                problems += [f"{name}:{node.lineno} imports {node.module}.{a.name}"
                             for a in node.names if a.name.startswith("_")]
            elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                  and node.attr.startswith("_") and not node.attr.startswith("__")):
                problems.append(f"{name}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
            if isinstance(node, (ast.Assign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id in aliases:
                        problems.append(f"{name}:{node.lineno} replaces {aliases[t.value.id]}.{t.attr}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr"
                    and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in aliases):
                problems.append(f"{name}:{node.lineno} setattr on {aliases[node.args[0].id]}")
    assert not problems, "; ".join(problems)


def test_every_mode_listed_is_a_flag_of_its_script():
    for script, extra in MODES:
        source = (BENCH / script).read_text()
        assert all(f'"{flag}"' in source for flag in extra), (script, extra)


def test_the_parts_run_every_script_and_mode_once():
    ids = [p.id for i in range(PARTS) for p in part(i)]
    assert sorted(ids) == sorted(_run_id(*r) for r in _runs())


@pytest.mark.parametrize(("script", "extra"), part(0))
def test_bench_script_runs_at_a_tiny_size(script, extra):
    run_smoke(script, extra)


def run_smoke(script: str, extra: tuple[str, ...]) -> None:
    source = (BENCH / script).read_text()
    # --smoke in the script itself, or from bench/_common.parser (argparse refuses it otherwise: exit 2 below).
    takes_smoke = "--smoke" in source or re.search(r"from bench\._common import [^\n]*\bparser\b", source)
    assert takes_smoke, f"bench/{script} must accept --smoke (bench/README.md: the convention)"
    if script in NEEDS_PODMAN:
        from tests.container_images import tools_missing

        missing = tools_missing()
        need(not missing, f"bench/{script} needs {', '.join(missing)} (bash scripts/test installs them)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "FEEDBACK_", "GRADIO_"))}
    res = subprocess.run([sys.executable, str(BENCH / script), "--smoke", *extra], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=900 if script in NEEDS_PODMAN else 300)
    assert res.returncode == 0, f"bench/{script} --smoke {' '.join(extra)} failed rc={res.returncode}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
