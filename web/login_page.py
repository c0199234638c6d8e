"""The owner's login form: one password field, a title, readable in light and dark.

Gradio's own login page (drawn by its whole front end) asks for a user name that the
owner's check ignores, has no <title>, and its button fails contrast (2.8:1). This small page
replaces it at GET /admin/ for a visitor without the login cookie; it posts to Gradio's own
/admin/login (so the login throttle, the password check and the cookie stay as they were),
sending a fixed user name the check does not look at, then reloads into the owner's page.
No script or style from elsewhere: it is the whole page.
"""

from __future__ import annotations

import html
from typing import Callable

OWNER_PATHS = ("/admin/",)
USER_NAME = "owner"  # Gradio's login form requires one; check_password ignores it

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="robots" content="noindex">
<title>Log in: owner's page</title>
<style>
:root { color-scheme: light dark; --bg: #ffffff; --fg: #1c1917; --muted: #57534e; --border: #a8a29e;
  --accent: #c2410c; --accent-hover: #9a3412; --focus: #1d4ed8; --error: #b91c1c; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0c0a09; --fg: #f5f5f4; --muted: #a8a29e; --border: #78716c; --accent: #c2410c;
    --accent-hover: #ea580c; --focus: #93c5fd; --error: #fca5a5; }
}
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
  background: var(--bg); color: var(--fg); }
main { max-width: 26rem; margin: 10vh auto; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin: 0 0 .5rem; }
p { margin: 0 0 1rem; color: var(--muted); }
label { display: block; font-weight: 600; margin-bottom: .25rem; }
input { width: 100%; font: inherit; padding: .6rem .75rem; min-height: 44px; border: 2px solid var(--border);
  border-radius: 8px; background: var(--bg); color: var(--fg); }
button { margin-top: 1rem; width: 100%; min-height: 44px; font: inherit; font-weight: 600; color: #ffffff;
  background: var(--accent); border: 0; border-radius: 8px; cursor: pointer; }
button:hover { background: var(--accent-hover); }
input:focus-visible, button:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
#login-message { min-height: 1.5rem; margin-top: 1rem; color: var(--error); font-weight: 600; }
</style>
</head>
<body>
<main>
<h1>Owner's page</h1>
<p>__MESSAGE__</p>
<form id="login" method="post" action="login" novalidate>
<input type="hidden" name="username" value="__USER__">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required
  aria-describedby="login-message">
<button type="submit">Log in</button>
<div id="login-message" role="alert"></div>
</form>
</main>
<script>
const form = document.getElementById("login");
const message = document.getElementById("login-message");
const field = document.getElementById("password");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  message.textContent = "";
  field.removeAttribute("aria-invalid");
  if (!field.value) {
    field.setAttribute("aria-invalid", "true");
    message.textContent = "Please enter the password.";
    field.focus();
    return;
  }
  let answer;
  try {
    answer = await fetch("login", { method: "POST", body: new URLSearchParams(new FormData(form)),
                                    credentials: "same-origin" });
  } catch (e) {
    message.textContent = "The server could not be reached. Please try again.";
    return;
  }
  if (answer.ok) { window.location.reload(); return; }
  let text = "Wrong password.";
  if (answer.status === 429) {
    try { text = (await answer.json()).error || text; } catch (e) { /* keep the default */ }
  }
  field.setAttribute("aria-invalid", "true");
  field.select();
  message.textContent = text;
});
</script>
</body>
</html>
"""


def render(auth_message: str) -> bytes:
    return (PAGE.replace("__MESSAGE__", html.escape(auth_message))
            .replace("__USER__", USER_NAME).encode("utf-8"))


class OwnerLoginPage:
    """Pure ASGI middleware: GET/HEAD /admin/ without a valid login answers with the page above."""

    def __init__(self, app, logged_in: Callable[[dict], bool], auth_message: str):
        self.app = app
        self.logged_in = logged_in
        self.body = render(auth_message)

    async def __call__(self, scope, receive, send):
        if (scope["type"] == "http" and scope.get("method") in ("GET", "HEAD")
                and scope.get("path") in OWNER_PATHS and not self.logged_in(scope)):
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(self.body)).encode()),
                (b"cache-control", b"no-store")]})
            await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else self.body})
            return
        await self.app(scope, receive, send)
