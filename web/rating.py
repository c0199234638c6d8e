"""The rating: five native radio buttons in one group, drawn by a gr.HTML.

Gradio's Radio renders each option as its own group (name="radio-1"..."radio-5"), so arrows
do nothing and every option is a Tab stop. One `name` makes it the browser's own radio
group, which is the ARIA Authoring Practices pattern: one Tab stop, arrows move and select,
Space selects. Enter selects the focused option and never sends the form.

The component's value is the chosen integer (None before a choice): `props.value` in the
browser, what the submit handler receives, and what a handler sets to clear it.
"""

from shared.reviews import HIGHEST, LOWEST, RATINGS

QUESTION = "How satisfied are you?"
HELP = f"{LOWEST} = not at all, {HIGHEST} = very"

# gr.HTML fills this as a Handlebars template, then as a JS template string (`value` is the prop).
TEMPLATE = (
    '<div class="rating-field">'
    f'<p id="rating-label" class="rating-label">{QUESTION}</p>'
    f'<p id="rating-help" class="rating-help">{HELP}</p>'
    '<div role="radiogroup" class="rating-options" aria-labelledby="rating-label" aria-describedby="rating-help">'
    f'${{{list(RATINGS)}.map((n) => `<label class="rating-option">'
    '<input type="radio" name="rating" value="${n}"${value == n ? " checked" : ""}>'
    '<span class="rating-number">${n}</span><span class="rating-star" aria-hidden="true">★</span>'
    '</label>`).join("")}'
    '</div></div>'
)

# `element`, `props`, `watch` come from gr.HTML (runs once when the page is drawn).
JS = r"""
const sync = () => {
  element.querySelectorAll('input[name=rating]').forEach((r) => { r.checked = Number(r.value) === props.value; });
};
element.addEventListener('change', (e) => {
  if (e.target.name === 'rating' && e.target.checked) props.value = Number(e.target.value);
});
element.addEventListener('keydown', (e) => {
  if (e.target.name !== 'rating' || e.key !== 'Enter') return;
  e.preventDefault();  // Enter chooses, it never sends the form
  if (!e.target.checked) e.target.click();
});
watch('value', sync);
sync();
"""

CSS = """
#rating .rating-label { margin: 0; font-weight: 600; color: var(--body-text-color); }
#rating .rating-help { margin: 2px 0 8px; color: var(--body-text-color-subdued); font-size: var(--text-sm); }
#rating .rating-options { display: flex; flex-wrap: nowrap; gap: 8px; }
#rating .rating-option { position: relative; flex: 1 1 0; min-width: 44px; max-width: 72px; height: 48px;
  display: flex; align-items: center; justify-content: center; gap: 2px; cursor: pointer;
  font-weight: 600; font-size: 1.1em; color: var(--body-text-color); }
#rating .rating-option input { position: absolute; inset: 0; width: 100%; height: 100%; margin: 0; cursor: pointer;
  appearance: none; -webkit-appearance: none; border: 2px solid var(--border-color-primary);
  border-radius: 8px; background: var(--input-background-fill); }
#rating .rating-option input:hover { border-color: #c2410c; }
#rating .rating-option input:checked { background: #c2410c; border-color: #c2410c; }
#rating .rating-option input:focus-visible { outline: 3px solid #1d4ed8 !important; outline-offset: 2px; }
#rating .rating-option span { position: relative; pointer-events: none; }
#rating .rating-option:has(input:checked) span { color: #ffffff; }
#rating .rating-star { color: #a04a00; }
.dark #rating .rating-star { color: #fbbf24; }
.dark #rating .rating-option input:focus-visible { outline-color: #93c5fd !important; }
#rating [aria-invalid=true] .rating-option input { border-color: #b91c1c; }
.dark #rating [aria-invalid=true] .rating-option input { border-color: #f87171; }
"""
