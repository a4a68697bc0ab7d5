"""The Python examples of the README and of every docs page run as written (each in a fresh
interpreter, CPU)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [(f"{page.relative_to(ROOT)}#{i}", code) for page in PAGES
          for i, code in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S))]


def test_readme_and_docs_have_examples():
    assert any(name.startswith("README.md") for name, _ in BLOCKS)
    assert len(BLOCKS) >= 10
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300


@pytest.mark.parametrize("name,code", BLOCKS, ids=[name for name, _ in BLOCKS])
def test_example_runs(name, code, tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=600)
    assert r.returncode == 0, f"{name} failed:\n{code}\n{r.stderr[-3000:]}"
