"""The package layout: `import sparsenb` is the library (torch + numpy); notebook tooling and
experiments load on use; no per-paper driver sits at the top level; optional packages name their extra."""
import ast
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


# what each subpackage may not import (the dependency direction of ARCHITECTURE.md)
FORBIDDEN = {
    "core": {"methods", "layers", "models", "data", "train", "cpd", "experiments", "nb"},
    "layers": {"methods", "train", "experiments", "nb"},
    "models": {"methods", "train", "experiments", "nb"},
    "data": {"core", "methods", "layers", "models", "train", "cpd", "experiments", "nb"},
    "cpd": {"methods", "train", "experiments", "nb"},
    "methods": {"train", "experiments", "nb"},
    "train": {"experiments", "nb"},
}


def _imported_subpackages(path: Path) -> set[str]:
    """First-level sparsenb subpackages that the module at ``path`` imports (relative or absolute)."""
    parts = path.relative_to(ROOT).with_suffix("").parts  # ("sparsenb", "layers", "truly_sparse")
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(parts[:len(parts) - node.level])
                mod = base + (node.module.split(".") if node.module else [])
                names = [mod[1]] if len(mod) > 1 else [a.name for a in node.names]
            elif node.module and node.module.startswith("sparsenb."):
                names = [node.module.split(".")[1]]
            else:
                continue
            out.update(names)
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("sparsenb."))
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_library_packages_import_only_downward(package):
    for path in sorted((ROOT / "sparsenb" / package).rglob("*.py")):
        bad = _imported_subpackages(path) & FORBIDDEN[package]
        assert not bad, f"{path.relative_to(ROOT)} imports sparsenb.{sorted(bad)}; see ARCHITECTURE.md"


def test_missing_optional_package_names_the_extra():
    from sparsenb._optional import require

    with pytest.raises(ImportError, match=r"pip install 'sparsenb\[gnn\]'"):
        require("no_such_package_xyz.nn", "gnn", "the GCN/GAT/GIN models")
    assert require("json", "notebooks", "json").dumps([]) == "[]"
