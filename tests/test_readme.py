"""The README works as written: every ```python block runs, in order, in one namespace (as a reader would paste them)."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(), flags=re.S | re.M)


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 2, "the README's own-training-loop examples are gone?"


def test_readme_python_blocks_run_as_shown(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the Trainer example writes ckpt.pt into the working directory
    namespace: dict = {}
    for i, block in enumerate(BLOCKS):
        try:
            exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)
        except Exception as e:  # name the block, not only the line
            pytest.fail(f"README python block {i + 1} fails: {type(e).__name__}: {e}\n{block}")
    report = namespace["snb"].density_report(namespace["model"])
    assert report and abs(sum(r["nnz"] for r in report.values()) / sum(r["numel"] for r in report.values()) - 0.1) < 1e-3
    assert (tmp_path / "ckpt.pt").exists() and len(namespace["trainer"].history) == 5
