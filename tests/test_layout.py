"""The package layout: `import sparsenb` is the library (torch + numpy); notebook tooling and
experiments load on use; no per-paper driver sits at the top level; optional packages name their extra."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# (tqdm is not listed: torch itself imports it, through torch.hub)
HEAVY = ("matplotlib", "pandas", "papermill", "torch_geometric", "sktime", "IPython", "nbformat", "sklearn",
         "scipy", "mlxtend", "seaborn")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return {m.split(".")[0] for m in out.stdout.split()}


def test_import_sparsenb_loads_no_optional_package():
    loaded = _modules_after("import sparsenb")
    assert "torch" in loaded and "numpy" in loaded
    assert not loaded & set(HEAVY), f"import sparsenb loaded {sorted(loaded & set(HEAVY))}"


def test_readme_library_calls_load_no_notebook_tooling():
    loaded = _modules_after(
        "import torch, sparsenb as snb\n"
        "m = snb.models.lenet_300_100(in_features=64)\n"
        "opt = torch.optim.SGD(m.parameters(), lr=0.1)\n"
        "snb.sparsify(m, sparsity=0.9, distribution='erk', optimizer=opt)\n"
        "snb.methods.get('rigl', sparsity=0.9); snb.Trainer")
    assert not loaded & {"matplotlib", "pandas", "papermill", "torch_geometric", "sktime"}


def test_notebook_tooling_and_experiments_load_on_attribute_access():
    import sparsenb as snb

    assert snb.nb.Run is snb.nb.record.__globals__["Run"]
    assert snb.experiments.__name__ == "sparsenb.experiments"
    with pytest.raises(AttributeError, match="no attribute 'nosuch'"):
        snb.nosuch


def test_top_level_holds_only_the_library_entry_point_modules():
    top = sorted(p.stem for p in (ROOT / "sparsenb").glob("*.py"))
    assert top == ["__init__", "_optional"], f"top-level modules belong in a subpackage: {top}"


def test_missing_optional_package_names_the_extra():
    from sparsenb._optional import require

    with pytest.raises(ImportError, match=r"pip install 'sparsenb\[gnn\]'"):
        require("no_such_package_xyz.nn", "gnn", "the GCN/GAT/GIN models")
    assert require("json", "notebooks", "json").dumps([]) == "[]"
