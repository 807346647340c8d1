"""Anti-drift checks on the committed notebooks, results and README gallery."""
import ast
import json
from pathlib import Path

import nbformat
import pytest

import sparsenb
from sparsenb.catalog import NOTEBOOKS
from sparsenb.gallery import update_readme

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_FILES = sorted((ROOT / "notebooks").glob("*.ipynb"))
PACKAGE_NAMES = set(sparsenb.__all__)


def test_there_are_notebooks_and_each_is_in_the_catalog():
    assert NOTEBOOK_FILES
    assert {p.stem for p in NOTEBOOK_FILES} == set(NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_one_parameters_cell_with_profile_and_literals_only(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    tree = ast.parse(tagged[0].source)
    names = []
    for node in tree.body:
        assert isinstance(node, (ast.AnnAssign, ast.Assign)), "parameters cell: assignments only"
        ast.literal_eval(node.value)  # literals only
        target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
        names.append(target.id)
    for line in tagged[0].source.splitlines():
        assert "=" not in line.partition("#")[2], f"papermill cannot parse a '=' in a parameter comment: {line}"
    assert names[0] == "PROFILE" and {"OUT_DIR", "FIG_DIR"} <= set(names)


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_outputs_stripped_and_no_installs(path):
    nb = nbformat.read(path, as_version=4)
    for c in nb.cells:
        if c.cell_type == "code":
            assert not c.outputs and c.execution_count is None, "commit notebooks with outputs stripped"
            assert "pip install" not in c.source


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_records_and_claims_and_defines_nothing(path):
    nb = nbformat.read(path, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "record(" in code and "claim(" in code
    tree = ast.parse(code)
    for node in ast.walk(tree):
        assert not isinstance(node, (ast.FunctionDef, ast.ClassDef)), \
            f"{path.name} defines {node.name}: put it in the package"
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    assert t.id not in PACKAGE_NAMES, f"{path.name} redefines sparsenb.{t.id}"


@pytest.mark.parametrize("stem", sorted(NOTEBOOKS))
def test_committed_cpu_results_exist_and_claims_match_gallery(stem):
    path = ROOT / "results" / stem / "cpu" / "results.json"
    assert path.exists(), f"commit the cpu results: sparsenb run notebooks/{stem}.ipynb"
    res = json.loads(path.read_text())
    assert res["profile"] == "cpu" and res["notebook"] == stem
    texts, ids = {c["text"] for c in res["claims"]}, {c.get("id") for c in res["claims"]}
    for row in NOTEBOOKS[stem].gallery:  # found by id, or by text in records older than claim ids
        assert row.claim_id in ids or row.claim in texts, f"gallery claim {row.claim_id!r} is not recorded in {path}"
    figs = list((ROOT / "figures" / stem / "cpu").glob("*.png"))
    assert figs, f"commit the cpu figures of {stem}"


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_run_finish_once_after_the_last_record(path):
    """results.json is written only by run.finish(): every notebook calls it once, after its last
    record/claim/figure/cached call (a record after it would only reach the partial file)."""
    import re
    nb = nbformat.read(path, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    finishing = [i for i, src in enumerate(code) if "run.finish()" in src]
    assert len(finishing) == 1, "call run.finish() once, in the cell after the last record"
    uses = [i for i, src in enumerate(code) if re.search(r"\brun\.(record|claim|figure|cached)\(", src)]
    assert max(uses) < finishing[0], "record/claim/figure/cached after run.finish()"


def test_readme_gallery_matches_results():
    assert update_readme(ROOT / "README.md", check=True), "README gallery is stale: run `sparsenb gallery`"


PACKAGE_SOURCE = "\n".join(p.read_text() for p in (ROOT / "sparsenb").glob("*.py"))


@pytest.mark.parametrize("stem", sorted(NOTEBOOKS))
def test_gallery_rows_name_a_claim_id_the_notebook_records(stem):
    code = "\n".join(c.source for c in nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4).cells
                     if c.cell_type == "code")
    for row in NOTEBOOKS[stem].gallery:
        assert row.claim_id, f"{stem}: gallery row {row.method!r} has no claim_id"
        part = max(row.claim_id.split("/"), key=len)  # ids such as f"edst_beats_dense/{name}" are built in code
        assert any(q in src for q in (f'"{part}"', f'/{part}"', f'"{part}/') for src in (code, PACKAGE_SOURCE)), \
            f"{stem}: no claim(..., id=...) gives the gallery's claim_id {row.claim_id!r}"
