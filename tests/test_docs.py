"""Every ```python block in README.md and docs/*.md runs, so the documentation cannot rot.

Blocks of one file run in order in one namespace (later blocks may use earlier names), in a
temporary working directory that links the repository's datasets/ and scripts/. Blocks that are
illustrations rather than programs are written with another language tag (```text, ```bash, ```yaml).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(python|bash)\n(.*?)^```", re.S | re.M)


def code_blocks(path: Path) -> list[tuple[str, str]]:
    """(language, code) of every runnable block, in document order."""
    return BLOCK.findall(path.read_text())


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run(document, tmp_path, monkeypatch):
    blocks = code_blocks(document)
    if not blocks:
        pytest.skip(f"{document.name} has no runnable blocks")
    # Run as a user in a fresh clone would: repo-relative data paths work, outputs stay out of the repo.
    for shared in ("datasets", "scripts"):
        (tmp_path / shared).symlink_to(ROOT / shared)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    namespace = {"__name__": "__docs__", "REPO_ROOT": ROOT}
    for number, (language, code) in enumerate(blocks, start=1):
        where = f"{document.relative_to(ROOT)} block {number} ({language})"
        if language == "bash":
            run = subprocess.run(["bash", "-euo", "pipefail", "-c", code], capture_output=True, text=True, timeout=600)
            assert run.returncode == 0, \
                f"{where} failed:\n{code}\n--- output ---\n{run.stdout[-3000:]}{run.stderr[-3000:]}"
            continue
        try:
            exec(compile(code, where, "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"{where} failed: {error!r}\n{code}") from error


def test_readme_shows_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert "make demo" in text and "make test" in text
