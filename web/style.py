"""What both pages share to stay readable and usable by keyboard and screen reader.

Gradio's default theme fails WCAG AA contrast in three places we show (axe-core,
tests/test_accessibility.py): white on its orange primary button (2.8:1), its
"subdued" grey text (#bbbbc2 on white, 1.9:1: the list's times, the footer link)
and its radio buttons show no focus ring. The colours below are the theme's own
variables, darkened to >= 4.5:1; dark mode keeps Gradio's values.
"""

from __future__ import annotations

CSS = """
:root, .gradio-container {
  --body-text-color-subdued: #57534e;
  --button-primary-background-fill: #c2410c;
  --button-primary-background-fill-hover: #9a3412;
  --button-primary-border-color: #c2410c;
  --button-primary-text-color: #ffffff;
}
.dark, .dark .gradio-container { --body-text-color-subdued: #a8a29e; }
footer a, footer button, .show-api { color: var(--body-text-color-subdued) !important; }
/* A visible focus on every stop of the tab order (Gradio's radios have none). */
input:focus-visible, textarea:focus-visible, button:focus-visible, a:focus-visible, summary:focus-visible,
[tabindex]:focus-visible {
  outline: 3px solid #1d4ed8 !important; outline-offset: 2px;
}
"""

# Text people type or read may be right-to-left (Hebrew, Arabic): every field that takes it gets
# dir="auto", so the browser lays each one out by its own first strong character. Gradio's
# `rtl` option would force one direction for everyone.
#
# Gradio 6 draws a Radio's or CheckboxGroup's label as a <span> in a <fieldset> with no
# <legend>, so a screen reader announces the options as "1", "2"... with no question.
# Name each group after its label (runs on both pages, once they are drawn).
JS = """
() => {
  const autoDir = (tries) => {
    const fields = document.querySelectorAll("input[type=text], input:not([type]), input[type=search], textarea");
    fields.forEach((f) => f.setAttribute("dir", "auto"));
    if (tries > 0 && !fields.length) setTimeout(() => autoDir(tries - 1), 200);
  };
  autoDir(50);
  const label = (tries) => {
    let named = 0;
    document.querySelectorAll("fieldset").forEach((set) => {
      const info = set.querySelector(":scope > [data-testid=block-info]");
      const radio = set.querySelector("input[type=radio]");
      if (!info || !(radio || set.querySelector("input[type=checkbox]"))) return;
      info.id = info.id || (set.id || "group") + "-label";
      set.setAttribute("role", radio ? "radiogroup" : "group");
      set.setAttribute("aria-labelledby", info.id);
      named += 1;
    });
    if (tries > 0 && !named) setTimeout(() => label(tries - 1), 200);
  };
  label(50);
}
"""
