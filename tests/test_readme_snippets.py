"""Every ```python block of README.md and of every docs/*.md page runs as a script, copied as is.

Each block is written to a file in an otherwise empty folder and run by this interpreter in a
fresh process (as a user would after pasting it), with no network and a timeout. The folder
links the repository's ``configs/`` (the docs' commands run from the repository root, and
snippets may name ``configs/...`` files). A block that needs no more than the installed package
must work: the WebShop env starts its own server in-process, ALFWorld-v0 plays the embedded
games. Signature sketches and pseudo-code are fenced as ```text, not ```python.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Pages whose Python snippets are run here: the README and every docs page.
PAGES = ("README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")))
#: Pages known to have Python snippets (guards against a broken extraction finding none).
PAGES_WITH_SNIPPETS = {
    "README.md",
    "docs/advantages.md",
    "docs/alfworld.md",
    "docs/hiper.md",
    "docs/memory.md",
    "docs/webshop.md",
    "docs/webshop-data.md",
}
TIMEOUT_S = 600
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks(page: str) -> list[tuple[int, str]]:
    """``(line number, code)`` of each ```python block of a markdown page."""
    text = (ROOT / page).read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in _BLOCK.finditer(text)]


SNIPPETS = [(page, line, code) for page in PAGES for line, code in python_blocks(page)]


def test_the_pages_have_snippets():
    missing = PAGES_WITH_SNIPPETS - {page for page, _, _ in SNIPPETS}
    assert not missing, f"no ```python block found in {sorted(missing)}"
    assert any("make_group_vector_env" in code for _, _, code in SNIPPETS)


@pytest.mark.parametrize(("page", "line", "code"), SNIPPETS, ids=[f"{p}:{n}" for p, n, _ in SNIPPETS])
def test_snippet_runs_as_a_script(page, line, code, tmp_path):
    (tmp_path / "configs").symlink_to(ROOT / "configs", target_is_directory=True)
    script = tmp_path / "snippet.py"
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, f"{page}:{line} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
