"""What the code needs from the packages it runs on: every imported package declared and pinned, and
the library internals the web relies on still there at the pinned versions.

The web patches a few Gradio internals on instances and subclasses uvicorn's H11Protocol. That is
safe only at the versions pinned in requirements.txt; after an upgrade these tests name what moved
(and which of our files depends on it) before the app misbehaves in production."""

from __future__ import annotations

import ast
import inspect
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
OURS = {"shared", "web", "worker", "tests", "bench", "scripts"}


def declared(path: Path) -> dict[str, Requirement]:
    found: dict[str, Requirement] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found.update(declared(path.parent / line.split(None, 1)[1]))
        elif line and not line.startswith("-"):
            req = Requirement(line)
            found[canonicalize_name(req.name)] = req
    return found


def imported_top_modules(folders: list[str]) -> dict[str, str]:
    """top-level module -> the first file importing it (every import statement, nested ones included)."""
    flat_local = {p.stem for p in (ROOT / "tests").glob("*.py")} | {p.stem for p in (ROOT / "bench").glob("*.py")}
    found: dict[str, str] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "node_modules" in path.parts or "out" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".", 1)[0]
                    if top in sys.stdlib_module_names or top in OURS or top in flat_local:
                        continue
                    found.setdefault(top, path.relative_to(ROOT).as_posix())
    return found


@pytest.mark.parametrize("folders, requirements", [
    (["shared", "web", "worker"], "requirements.txt"),
    (["tests", "bench"], "requirements-test.txt"),
])
def test_every_imported_package_is_declared_and_pinned(folders, requirements):
    reqs = declared(ROOT / requirements)
    dists = metadata.packages_distributions()
    missing = []
    for module, where in sorted(imported_top_modules(folders).items()):
        names = {canonicalize_name(d) for d in dists.get(module, [module])}
        if not names & reqs.keys():
            missing.append(f"{module} (imported by {where}; distribution {', '.join(sorted(names))})")
    assert not missing, f"imported but not declared in {requirements}: " + "; ".join(missing)
    for name, req in reqs.items():
        pins = [s.version for s in req.specifier if s.operator == "=="]
        assert pins, f"{requirements}: {req} is not pinned with =="
        assert metadata.version(name) == pins[0], f"{name}: installed {metadata.version(name)}, pinned {pins[0]}"


def pinned(name: str) -> str:
    return str(next(iter(declared(ROOT / "requirements.txt")[name].specifier))).lstrip("=")


def test_gradio_internals_the_web_patches_are_still_there():
    """Each row: what we use, the file that uses it, and how Gradio must still read it."""
    import gradio as gr
    from gradio import blocks, routes, state_holder

    assert gr.__version__ == pinned("gradio")
    blocks_src = inspect.getsource(blocks)
    problems = []

    def need(ok: bool, what: str, used_by: str) -> None:
        if not ok:
            problems.append(f"{what} (used by {used_by})")

    # web/app.py _describe_rating: gr.api's inputs are Api components whose api_info() returns their
    # `_api_info`, which Blocks reads per component for /gradio_api/info.
    from gradio.components.api_component import Api
    need("return self._api_info" in inspect.getsource(Api.api_info) and "block.api_info()" in blocks_src
         and callable(getattr(gr, "api", None)),
         "gr.api with Api components describing themselves through _api_info", "web/app.py _describe_rating")
    # web/app.py _hide_api_only_components: the page's config is built from each block's get_config()
    # read on the instance (so a per-instance wrapper is what the browser is sent), and the frontend
    # reads "visible" from it.
    need("props = block.get_config()" in blocks_src and callable(getattr(Api, "get_config", None)),
         "Blocks' config built from block.get_config() on each instance, Api.get_config",
         "web/app.py _hide_api_only_components")
    # web/rating.py and web/app.py: gr.HTML templates with js_on_load (`props.value` is the component's value).
    need({"html_template", "js_on_load", "apply_default_css", "padding"} <= set(inspect.signature(gr.HTML).parameters),
         "gr.HTML(html_template, js_on_load, apply_default_css, padding)", "web/rating.py, web/app.py")
    # web/app.py quiet_input_count_check: validate_inputs(block_fn, inputs) on the Blocks instance.
    sig = inspect.signature(blocks.Blocks.validate_inputs)
    need(list(sig.parameters) == ["self", "block_fn", "inputs"]
         and "self.validate_inputs(block_fn, inputs)" in inspect.getsource(blocks.Blocks.preprocess_data),
         "Blocks.validate_inputs(block_fn, inputs), called from preprocess_data",
         "web/app.py quiet_input_count_check")
    # web/app.py SESSION_CAPACITY: the state holder's capacity comes from the Blocks attribute.
    need("blocks.state_session_capacity" in inspect.getsource(state_holder),
         "StateHolder reads blocks.state_session_capacity", "web/app.py build_app (SESSION_CAPACITY)")
    # web/admin.py: the download button's GRADIO_CACHE decides where Gradio moves the file it serves.
    need(hasattr(gr.DownloadButton(visible=False), "GRADIO_CACHE") and "self.GRADIO_CACHE" in blocks_src,
         "a component's GRADIO_CACHE attribute, read when moving files to the cache", "web/admin.py build_admin")
    # web/__main__.py owner_login_check: the mounted app's login cookie name and token table.
    routes_src = inspect.getsource(routes)
    need(re.search(r"self\.cookie_id\s*=", routes_src) is not None and re.search(r"self\.tokens\s*=", routes_src)
         is not None and 'f"access-token-{app.cookie_id}"' in routes_src
         and 'f"access-token-unsecure-{app.cookie_id}"' in routes_src,
         "App.cookie_id / App.tokens and the access-token-{cookie_id} cookies",
         "web/__main__.py owner_login_check")
    need(callable(getattr(gr, "mount_gradio_app", None))
         and {"auth", "auth_message", "blocked_paths", "footer_links", "run_history", "css", "js", "theme"}
         <= set(inspect.signature(gr.mount_gradio_app).parameters),
         "mount_gradio_app(auth, auth_message, blocked_paths, footer_links, run_history, css, js, theme)",
         "web/__main__.py build_web")
    assert not problems, f"gradio {gr.__version__} no longer has: " + "; ".join(problems)


def test_uvicorn_and_starlette_internals_the_web_uses_are_still_there():
    import uvicorn
    from starlette import requests
    from uvicorn.protocols.http.h11_impl import H11Protocol

    assert uvicorn.__version__ == pinned("uvicorn")
    problems = []
    # web/connections.py GuardedH11Protocol overrides these and reads these attributes.
    for method in ("connection_made", "on_response_complete", "connection_lost", "handle_events"):
        if not callable(getattr(H11Protocol, method, None)):
            problems.append(f"H11Protocol.{method}")
    src = inspect.getsource(H11Protocol)
    for attr in ("self.client", "self.server_state", "self.connections", "self.loop", "self.transport"):
        if f"{attr} =" not in src:
            problems.append(f"H11Protocol sets {attr}")
    if "on_response=self.on_response_complete" not in src:
        problems.append("H11Protocol hands each request cycle self.on_response_complete")
    config = inspect.signature(uvicorn.Config).parameters
    for kwarg in ("http", "h11_max_incomplete_event_size", "timeout_keep_alive", "limit_concurrency", "backlog",
                  "timeout_graceful_shutdown", "proxy_headers", "forwarded_allow_ips"):
        if kwarg not in config:
            problems.append(f"uvicorn.Config({kwarg}=) (web/__main__.py build_web)")
    if not callable(getattr(requests, "cookie_parser", None)):
        problems.append("starlette.requests.cookie_parser (web/__main__.py owner_login_check)")
    assert not problems, "uvicorn/starlette no longer have: " + "; ".join(problems)
