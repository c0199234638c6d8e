"""Ask the browser for the HTML component's code with the page itself, not after it.

Gradio's page learns which component modules it needs only once its own code has run and read
the config (about 4 s into a cold load on 3G with a slow CPU), then fetches them over the six
connections a browser opens to one host. The minimal Gradio app needs Column, Form, Textbox
and Button; the form needs Gradio's HTML component too (the rating, the status line, the list),
whose three JS files (~36 KB compressed) were one more round of requests before the form
could be drawn. A `Link: rel=modulepreload` header on the page starts them in the first round,
beside the page's own script, when three of the six connections are idle; the import later
finds them in the browser's module map (bench/page_weight.py measures both apps).

The file names carry content hashes that change with every Gradio release, so they are read
from Gradio's built frontend (its map of component modules) rather than written here. If that
map cannot be read, the page goes without the header: slower, never broken.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path

log = logging.getLogger("web.preload")

# Always fetched by any Gradio page before its components (the root is a Column).
ALWAYS_LOADED = "column"


def _assets_dir() -> Path:
    import gradio
    return Path(gradio.__file__).parent / "templates" / "frontend" / "assets"


def component_files(kind: str, assets: Path | None = None) -> list[str]:
    """The JS files Gradio's page imports to draw a component of this kind, beyond what every
    page loads anyway, as names in Gradio's assets folder. [] if the frontend's map is not readable."""
    assets = assets or _assets_dir()
    try:
        core = next(assets.glob("core-*.js")).read_text(encoding="utf-8")
        names = re.findall(r'"\./([^"]+)"', re.search(r"m\.f=\[(.*?)\]", core).group(1))  # type: ignore[union-attr]

        def deps(component: str) -> list[str]:
            entry = re.search(r"[,{]" + component + r":\{[^}]*?component:\(\)=>\w+\(\(\)=>import\(`\./([^`]+)`\)"
                              r"(?:\.then\([^)]*\))?,__vite__mapDeps\(\[([\d,]+)\]\)", core)
            return [entry.group(1)] + [names[int(i)] for i in entry.group(2).split(",")]  # type: ignore[union-attr]

        always = set(deps(ALWAYS_LOADED))
        files = [f for f in dict.fromkeys(deps(kind)) if f.endswith(".js") and f not in always]
    except (StopIteration, AttributeError, IndexError, ValueError, OSError) as exc:
        log.warning("no preload for component=%s: gradio's frontend map not readable error=%r", kind, exc)
        return []
    if not all((assets / f).is_file() for f in files):
        log.warning("no preload for component=%s: files missing files=%s", kind, files)
        return []
    return files


@lru_cache(maxsize=None)
def link_header(kinds: tuple[str, ...]) -> bytes:
    """One `Link` header value preloading the modules of these component kinds."""
    files = [f for kind in kinds for f in component_files(kind)]
    # Relative to the page, so it holds under a proxy's path prefix as the page's own script does.
    return ", ".join(f"<./assets/{f}>; rel=modulepreload" for f in files).encode()


class PreloadLinks:
    """Pure ASGI middleware: the `Link` header on the public page (GET /), nothing else touched.
    Module preloads carry no credentials beyond the page's own and fetch only Gradio's public assets."""

    def __init__(self, app, kinds: tuple[str, ...] = ("html",)):
        self.app = app
        self.link = link_header(kinds)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/" or scope["method"] != "GET" or not self.link:
            return await self.app(scope, receive, send)

        async def with_link(message):
            if message["type"] == "http.response.start" and message.get("status") == 200:
                message = {**message, "headers": [*message.get("headers", []), (b"link", self.link)]}
            await send(message)
        return await self.app(scope, receive, with_link)
