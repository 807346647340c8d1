"""Gallery integrity and the one measured run time per notebook."""
import json
import shutil
from pathlib import Path

import nbformat

from sparsenb.nb import cli, gallery
from sparsenb.nb.catalog import NOTEBOOKS, resolve
from sparsenb.nb.record import config_hash, record_config

ROOT = Path(__file__).resolve().parents[1]


def test_every_committed_record_matches_its_profile_as_resolved_today():
    assert gallery.record_problems(ROOT) == []
    for stem in NOTEBOOKS:
        res = json.loads((ROOT / "results" / stem / "cpu" / "results.json").read_text())
        assert res["config_hash"] == config_hash(record_config(stem, resolve(stem, "cpu"))), stem


def _project_copy(tmp_path):
    for part in ("results", "notebooks"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("runs", "_scratch", "*.ipynb")
                        if part == "results" else None)
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    return tmp_path


def test_a_record_of_another_config_gives_no_row_and_fails_the_check(tmp_path):
    """`-p DATASET digits` once put its numbers into rows labelled with full MNIST (issue 11)."""
    root = _project_copy(tmp_path)
    path = root / "results" / "01_set_rigl" / "cpu" / "results.json"
    res = json.loads(path.read_text())
    res["config"]["DATASET"] = "digits"
    res["config_hash"] = config_hash(res["config"])
    res["metrics"]["set/0.98/test_acc_mean"] = 0.1733
    path.write_text(json.dumps(res))
    problems = gallery.record_problems(root)
    assert len(problems) == 1 and problems[0].startswith("results/01_set_rigl/cpu/results.json: config hash")
    table = gallery.gallery_markdown(root)
    assert "17.33" not in table and "record does not match the cpu profile" in table
    assert not gallery.update_readme(root / "README.md", check=True)
    assert cli.main(["gallery", "--check", "--readme", str(root / "README.md")]) == 1


def test_a_record_whose_config_was_edited_fails_the_check(tmp_path):
    root = _project_copy(tmp_path)
    path = root / "results" / "01_set_rigl" / "cpu" / "results.json"
    res = json.loads(path.read_text())
    res["config"]["EPOCHS"] = 3  # hash left as the profile's
    path.write_text(json.dumps(res))
    assert "does not hash to its config_hash" in gallery.record_problems(root)[0]


def test_a_record_made_with_other_threads_fails_the_check(tmp_path):
    root = _project_copy(tmp_path)
    path = root / "results" / "01_set_rigl" / "cpu" / "results.json"
    res = json.loads(path.read_text())
    res["env"]["threads"] = 2  # same config, but 2 threads change the float results
    path.write_text(json.dumps(res))
    assert "made with threads 2 (profile: 1)" in gallery.record_problems(root)[0]


def test_one_run_time_per_notebook_in_readme_list_and_title_cell(capsys):
    readme = (ROOT / "README.md").read_text()
    assert cli.main(["list"]) == 0
    listed = capsys.readouterr().out
    for stem in NOTEBOOKS:
        text = gallery.run_time_text(stem, ROOT)
        minutes = gallery.measured_minutes(stem, ROOT)
        res = json.loads((ROOT / "results" / stem / "cpu" / "results.json").read_text())
        assert abs(minutes * 60 - max(res["seconds"], res["work"]["unit_seconds"])) < 1e-9
        assert f"| {text} |" in next(line for line in readme.splitlines() if line.startswith(f"| `{stem}` |")
                                     and line.count("|") == 5)
        block = listed.split(f"{stem}:")[1].split("\n\n")[0]
        assert f"cpu    {text} (measured)" in block
        title = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4).cells[0].source
        lines = [x for x in title.splitlines() if x.startswith(gallery.RUN_TIME_PREFIX)]
        assert lines == [f"{gallery.RUN_TIME_PREFIX} {text}, measured by the committed record "
                         f"(`results/{stem}/cpu/results.json`: its compute time, on the machine and thread count "
                         f"recorded there)."], stem
    assert "min" not in readme.split("## Run the main job")[1].split("notebooks ship today")[0], \
        "the main job's run time is stated once, in the generated table"


def test_a_stale_run_time_in_a_notebook_fails_the_check(tmp_path):
    root = _project_copy(tmp_path)
    nb_path = root / "notebooks" / "03_lottery_tickets.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells[0].source = nb.cells[0].source.replace(gallery.run_time_text("03_lottery_tickets", root), "2.0 min")
    nbformat.write(nb, nb_path)
    assert not gallery.update_readme(root / "README.md", check=True)
    assert gallery.update_readme(root / "README.md") is False  # rewrites it
    assert gallery.update_readme(root / "README.md", check=True)
