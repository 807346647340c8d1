"""``sparsenb sweep``: grid files checked before any cell, both backends give one identical table,
failures isolated and listed, finished cells skipped on a re-run."""
import os
import sys

import nbformat
import pandas as pd
import pytest

from sparsenb.nb import cli, sweep

pytestmark = pytest.mark.xdist_group("sweep")  # the Ray instance and the kernels share 2 cores


def _notebook(path):
    """A tiny notebook: parameters X, Y; records x*y and x+y; raises at run time when X < 0 and Y == 3."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        'PROFILE: str = "smoke"  # smoke | cpu\nX: float = 1.0  # a number\nY: int = 2  # another\n'
        'OUT_DIR: str = None  # results folder\nFIG_DIR: str = None  # figures folder')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        'import sparsenb as snb\nrun = snb.nb.Run("tiny", PROFILE, {"X": X, "Y": Y}, OUT_DIR, FIG_DIR)\n'
        'if X < 0 and Y == 3:\n    raise ValueError(f"X={X} with Y=3 is not allowed")\n'
        'run.record("product", X * Y)\nrun.record("nested", {"sum": X + Y, "label": "text is not a number"})\n'
        'run.finish()')]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def _grid(tmp_path, body):
    _notebook(tmp_path / "tiny.ipynb")
    path = tmp_path / "grid.toml"
    path.write_text(body)
    return str(path)


GRID = '[[sweep]]\nnotebook = "tiny.ipynb"\nprofile = "smoke"\ngrid = { X = [1.5, -1.0], Y = [2, 3] }\n'


def test_grid_expands_to_checked_cells(tmp_path):
    cells = sweep.load_grid(_grid(tmp_path, GRID + 'params = {}\n'))
    assert [(c.params["X"], c.params["Y"]) for c in cells] == [(1.5, 2), (1.5, 3), (-1.0, 2), (-1.0, 3)]
    assert len({c.chash for c in cells}) == 4 and all(c.profile == "smoke" for c in cells)


def test_yaml_grid_and_catalog_hash_match_the_record(tmp_path):
    from sparsenb.nb.catalog import resolve
    from sparsenb.nb.record import config_hash, record_config
    path = tmp_path / "g.yaml"
    path.write_text("gpus: 1\nsweep:\n  - notebook: 01_set_rigl\n    profile: smoke\n    params: {EPOCHS: 1}\n"
                    "    grid: {SPARSITIES: [[0.9], [0.95]]}\n")
    cells = sweep.load_grid(path)
    assert [c.params for c in cells] == [{"EPOCHS": 1, "SPARSITIES": [0.9]}, {"EPOCHS": 1, "SPARSITIES": [0.95]}]
    assert cells[1].chash == config_hash(record_config("01_set_rigl", resolve("01_set_rigl", "smoke", {"EPOCHS": 1, "SPARSITIES": [0.95]})))
    assert cells[0].gpus == 1.0 and cells[0].cpus == 1.0


@pytest.mark.parametrize("body, message", [
    ('[[sweep]]\nnotebok = "01_set_rigl"\n', "unknown key 'notebok'; did you mean 'notebook'?"),
    ('[[sweep]]\nnotebook = "01_set_rgl"\nprofile = "smoke"\n', "did you mean '01_set_rigl'?"),
    ('[[sweep]]\nnotebook = "01_set_rigl"\nprofile = "smok"\n', "has no profile 'smok'"),
    ('[[sweep]]\nnotebook = "01_set_rigl"\nprofile = "smoke"\ngrid = { LR = 0.1 }\n', "non-empty list"),
    ('[[sweep]]\nnotebook = "01_set_rigl"\nprofile = "smoke"\ngrid = { SPARSITIES = [0.9, 0.95] }\n',
     "SPARSITIES must be a list"),
    ('[[sweep]]\nnotebook = "01_set_rigl"\nprofile = "smoke"\ngrid = { LR = [0.1, "fast"] }\n', "LR must be"),
    ('[[sweep]]\nnotebook = "01_set_rigl"\nprofile = "smoke"\nparams = { EPOCH = 2 }\n', "did you mean EPOCHS?"),
    ('[[sweep]]\nnotebook = "01_set_rigl"\nprofile = "smoke"\nparams = { OUT_DIR = "/tmp" }\n', "set by the sweep"),
    ('[[sweep]]\nnotebook = "01_set_rigl"\nprofile = "smoke"\ngpus = -1\n', "gpus must be a number >= 0"),
    ('[[sweep]\n', "not valid TOML"),
    ('jobs = 2\n', "unknown key 'jobs'"),
    ('[[sweep]]\nnotebook = "01_set_rigl"\nprofile = "smoke"\n[[sweep]]\nnotebook = "01_set_rigl"\n'
     'profile = "smoke"\ngrid = { EPOCHS = [2, 2.5] }\n', "sweep #2: EPOCHS must be an int"),
])
def test_bad_grid_is_one_line_exit_2_before_any_cell(tmp_path, capsys, monkeypatch, body, message):
    monkeypatch.setattr(sweep, "run_cell", lambda *a, **k: pytest.fail("no cell may start for a bad grid"))
    path = tmp_path / "bad.toml"
    path.write_text(body)
    assert cli.main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("flags, message", [(["--jobs", "0"], "--jobs must be at least 1"),
                                           (["--address", "auto"], "--address is for --backend ray")])
def test_bad_flags_exit_2(tmp_path, capsys, flags, message):
    assert cli.main(["sweep", _grid(tmp_path, GRID), *flags]) == 2
    assert message in capsys.readouterr().err


def _run(tmp_path, grid, name, *extra):
    code = cli.main(["sweep", grid, "--out", str(tmp_path / name), *extra])
    table = pd.read_csv(tmp_path / name / "sweep.csv")
    return code, table.sort_values(["cell", "metric"]).reset_index(drop=True)


def test_local_pool_and_ray_give_the_same_table_failures_listed_reruns_skip(tmp_path, capsys):
    pytest.importorskip("ray")
    grid = _grid(tmp_path, GRID)
    code, local = _run(tmp_path, grid, "local", "--jobs", "2")
    err = capsys.readouterr().err
    assert code == 1
    failed = err.split("failed cells (1):")[1].strip().splitlines()
    assert len(failed) == 1 and "X=-1.0 Y=3" in failed[0] and "ValueError: X=-1.0 with Y=3 is not allowed" in failed[0]
    # three finished cells x two numeric metrics; the text metric is left out
    assert len(local) == 6 and set(local["metric"]) == {"product", "nested/sum"}
    row = local[(local["X"] == 1.5) & (local["Y"] == 3) & (local["metric"] == "product")]
    assert row["value"].tolist() == [4.5]
    assert (tmp_path / "local" / "sweep.png").stat().st_size > 0 and (tmp_path / "local" / "sweep.svg").exists()
    status = pd.read_csv(tmp_path / "local" / "cells.csv")
    assert sorted(status["status"]) == ["failed", "ran", "ran", "ran"]

    code, ray_table = _run(tmp_path, grid, "ray", "--backend", "ray")
    assert code == 1 and "X=-1.0 Y=3" in capsys.readouterr().err.split("failed cells (1):")[1]
    pd.testing.assert_frame_equal(local, ray_table)

    code, again = _run(tmp_path, grid, "local", "--jobs", "2")  # only the failed cell runs again
    assert code == 1
    status = pd.read_csv(tmp_path / "local" / "cells.csv")
    assert sorted(status["status"]) == ["failed", "skipped", "skipped", "skipped"]
    pd.testing.assert_frame_equal(local, again)
    assert "3 already finished, 1 to run" in capsys.readouterr().err


class _Ref:
    """An object ref: hashable by identity; ``ray.get`` gives its value."""

    def __init__(self, value):
        self.value = value


class _FakeRay:
    """Stands in for the ray module: records the resources each task asks for, runs it at once."""

    def __init__(self, failures=0):
        self.options, self.inits, self.failures = [], [], failures

    def is_initialized(self):
        return False

    def init(self, **kwargs):
        self.inits.append(kwargs)
        if len(self.inits) <= self.failures:
            raise Exception("The current node timed out during startup.")

    def shutdown(self):
        pass

    def remote(self, fn):
        fake = self

        class Task:
            def options(self, **opts):
                fake.options.append(opts)
                return self

            def remote(self, payload):
                return _Ref(fn(payload))
        return Task()

    def wait(self, pending, num_returns):
        return pending[:num_returns], pending[num_returns:]

    def get(self, ref):
        return ref.value


def test_ray_tasks_ask_for_the_grid_files_gpus_and_cpus(tmp_path, monkeypatch):
    fake = _FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setattr(sweep, "run_cell", lambda payload: {"status": "ran", "error": "", "seconds": 0.0,
                                                            "record": {"metrics": {"m": 1}, "finished": "now"}})
    body = 'gpus = 1\n' + GRID.replace('profile = "smoke"', 'profile = "smoke"\ngpus = 0.5\ncpus = 2')
    cells = sweep.run_sweep(sweep.load_grid(_grid(tmp_path, body)), tmp_path / "out", backend="ray",
                            address="auto", log=lambda s: None)
    assert fake.inits == [{"address": "auto", "include_dashboard": False, "log_to_driver": False}]
    assert fake.options == [{"num_cpus": 2.0, "num_gpus": 0.5, "max_retries": 0}] * 4
    assert [c.status for c in cells] == ["ran"] * 4
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"
    # the records came back from the tasks: the driver wrote them into its own cell folders
    assert all((tmp_path / "out" / "cells" / "tiny" / f"smoke-{c.chash}" / "results.json").exists() for c in cells)


def test_readme_grid_file_is_valid(tmp_path):
    import re
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"^```toml\n(.*?)^```", readme, flags=re.S | re.M)
    assert blocks, "the README's Sweeps section lost its grid file"
    path = tmp_path / "sweep_set_rigl.toml"
    path.write_text(blocks[0])
    cells = sweep.load_grid(path)
    assert len(cells) == 4 and {c.params["SEEDS"] for c in cells} == {2}


def test_local_ray_gets_a_second_try_a_cluster_address_does_not(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sweep, "run_cell", lambda payload: pytest.fail("no cell without Ray"))
    cells = sweep.load_grid(_grid(tmp_path, GRID))
    fake = _FakeRay(failures=1)
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setattr(fake, "remote", lambda fn: _FakeRay().remote(lambda p: {
        "status": "ran", "error": "", "seconds": 0.0, "record": {"metrics": {}, "finished": "now"}}))
    sweep.run_sweep(cells, tmp_path / "out", backend="ray", log=lambda s: None)
    assert len(fake.inits) == 2 and "trying once more" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", _FakeRay(failures=1))
    with pytest.raises(sweep.GridError, match="could not join the Ray cluster at auto"):
        sweep.run_sweep(cells, tmp_path / "out2", backend="ray", address="auto", log=lambda s: None)
