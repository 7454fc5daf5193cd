"""Every ```python block in README.md and docs/*.md runs, so the documentation cannot rot.

Blocks of one file run in order in one namespace (later blocks may use earlier names), in a
temporary working directory that links the repository's datasets/ and scripts/. Blocks that are illustrations rather than programs are written
with another language tag (```text, ```bash, ```yaml).
"""

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path: Path) -> list[str]:
    return BLOCK.findall(path.read_text())


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run(document, tmp_path, monkeypatch):
    blocks = python_blocks(document)
    if not blocks:
        pytest.skip(f"{document.name} has no python blocks")
    # Run as a user in a fresh clone would: repo-relative data paths work, outputs stay out of the repo.
    for shared in ("datasets", "scripts"):
        (tmp_path / shared).symlink_to(ROOT / shared)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = {"__name__": "__docs__", "REPO_ROOT": ROOT}
    for number, code in enumerate(blocks, start=1):
        try:
            exec(compile(code, f"{document.name}[block {number}]", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"{document.relative_to(ROOT)} block {number} failed: {error!r}\n{code}") from error


def test_readme_shows_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert "make demo" in text and "make test" in text
