"""What goes into the Space image and the Space's card, checked without building anything
(tests/test_container.py builds and runs the image itself)."""

import re

from tests.container_images import ROOT, _ignore_rules, _ignored, context_files


def test_build_context_holds_the_app_and_nothing_private():
    files = {p.relative_to(ROOT).as_posix() for p in context_files()}
    for needed in ("requirements.txt", "constraints.txt", "supervisord.conf", "space/supervisord.conf",
                   "scripts/container-start", "shared/config.py", "web/__main__.py", "worker/__main__.py"):
        assert needed in files
    rules = _ignore_rules()
    # Whatever exists in a checkout at the time, these never enter the image.
    for private in ("data/reviews.db", "data/logs/worker.log", ".venv/bin/python", ".git/config", ".env",
                    "tests/test_container.py", "test-artifacts/form-390px.png", "bench/out/reviews-1000-s1.db",
                    "web/__pycache__/app.cpython-311.pyc", "worker/.env"):
        assert _ignored(private, rules), private


def test_space_card_front_matter_matches_the_image():
    card = (ROOT / "space" / "README.md").read_text()
    match = re.match(r"---\n(.*?)\n---\n", card, re.S)
    assert match, "space/README.md must start with YAML front matter"
    meta = dict(line.split(": ", 1) for line in match.group(1).splitlines())
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert meta["sdk"] == "docker"
    assert f"GRADIO_SERVER_PORT={meta['app_port']}" in dockerfile and f"EXPOSE {meta['app_port']}" in dockerfile
    assert len(meta["short_description"]) <= 60  # the Hub refuses a longer one
