"""The command line: parameters, listing, readable failures."""
import nbformat
import pytest

from sparsenb.nb import cli


def test_param_values_are_python_literals_or_strings():
    assert cli._value("5") == 5 and cli._value("0.1") == 0.1
    assert cli._value("[0.9, 0.95]") == [0.9, 0.95]
    assert cli._value("None") is None and cli._value("mnist5k") == "mnist5k"


def test_list_shows_every_notebook_with_profiles(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "01_set_rigl" in out and "smoke" in out and "cpu" in out and "paper" in out and "min" in out
    assert "00_explore" in out and "interactive, no record" in out


def test_missing_notebook_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["run", str(tmp_path / "nope.ipynb")]) == 2
    assert "no notebook at" in capsys.readouterr().err


def test_failing_notebook_gives_cell_and_exception(tmp_path, capsys):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('PROFILE = "cpu"\nOUT_DIR = None\nFIG_DIR = None')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("1 / 0")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "bad.ipynb"
    nbformat.write(nb, path)
    assert cli.main(["run", str(path), "--profile", "smoke", "--out", str(tmp_path / "out"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "ZeroDivisionError" in err and "failed in cell" in err
    assert "{" not in err.splitlines()[1], "the error should be text, not notebook JSON"


# -- checked before a kernel starts, safe records, readable failures (issue 11) ----------------------------

import importlib  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import papermill  # noqa: E402

R = importlib.import_module("sparsenb.nb.record")
ROOT = Path(__file__).resolve().parents[1]
NB01 = str(ROOT / "notebooks" / "01_set_rigl.ipynb")


def _dummy(path, body="", units=3, sleep=0.0):
    """A tiny notebook with a parameters cell, cached units, a record and run.finish()."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        f'PROFILE: str = "smoke"  # smoke | cpu\nUNITS: int = {units}  # units of work\n'
        f'SLEEP: float = {sleep}  # seconds per unit\nOUT_DIR: str = None  # results folder\n'
        'FIG_DIR: str = None  # figures folder')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        'import time, sparsenb as snb\nrun = snb.nb.Run("dummy", PROFILE, {"UNITS": UNITS}, OUT_DIR, FIG_DIR)\n'
        'vals = [run.cached(f"u{i}", lambda: (time.sleep(SLEEP), {"x": i / 3})[1]) for i in range(UNITS)]\n'
        'run.record("total", sum(v["x"] for v in vals))'),
        nbformat.v4.new_code_cell(body or "pass"), nbformat.v4.new_code_cell("run.finish()")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return str(path)


@pytest.fixture
def no_kernel(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("papermill must not start for a bad command")
    monkeypatch.setattr(papermill, "execute_notebook", fail)


@pytest.mark.parametrize("argv, message", [
    (["-p", "EPOCH", "5"], "unknown parameter EPOCH of 01_set_rigl; did you mean EPOCHS?"),
    (["-p", "EPOCHS", "abc"], "EPOCHS must be an int (the cpu profile's: 30); got 'abc'"),
    (["-p", "SPARSITIES", "0.9"], "SPARSITIES must be a list in brackets"),
    (["--profile", "gpu"], "PROFILE must be one of smoke | cpu | paper; got 'gpu'"),
    (["-p", "OUT_DIR", "/tmp/x"], "give the folder with --out DIR"),
])
def test_bad_parameters_exit_2_in_one_line_before_any_kernel(argv, message, capsys, no_kernel, tmp_path):
    assert cli.main(["run", NB01, "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_unusable_out_exits_2_in_one_line(tmp_path, capsys, no_kernel):
    afile = tmp_path / "a_file"
    afile.write_text("x")
    assert cli.main(["run", NB01, "--out", str(afile)]) == 2
    assert capsys.readouterr().err.strip() == f"sparsenb run: --out {afile} is a file; give a folder (it is created if missing)"
    assert cli.main(["run", NB01, "--out", str(afile / "sub")]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot create --out folder" in err and len(err.splitlines()) == 1
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if not __import__("os").access(locked, __import__("os").W_OK):  # root can write anywhere
        assert cli.main(["run", NB01, "--out", str(locked)]) == 2
        assert "not writable" in capsys.readouterr().err


def test_a_modified_run_goes_to_scratch_and_never_to_the_committed_record(tmp_path, monkeypatch, capsys):
    """`sparsenb run 01 -p DATASET digits` must not write results/01_set_rigl/cpu (issue 11)."""
    monkeypatch.setattr(R, "project_root", lambda: tmp_path)
    seen = {}

    def fake(nb, out, parameters, **kw):
        seen.update(parameters)
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", fake)
    assert cli.main(["run", NB01, "-p", "DATASET", "digits", "--quiet"]) == 130
    cfg = cli_resolve("01_set_rigl", "cpu", {"DATASET": "digits"})
    scratch = tmp_path / "results" / "_scratch" / "01_set_rigl" / f"cpu-{R.config_hash(R.record_config('01_set_rigl', cfg))}"
    assert seen["OUT_DIR"] == str(scratch) and "_scratch" in seen["FIG_DIR"]
    err = capsys.readouterr().err
    assert "scratch folder (git-ignored)" in err and 'DATASET "digits" (profile: "mnist5k")' in err
    assert cli.main(["run", NB01, "--quiet"]) == 130  # unmodified: the canonical folder
    assert seen["OUT_DIR"] == str(tmp_path / "results" / "01_set_rigl" / "cpu")
    assert cli.main(["run", NB01, "-p", "EPOCHS", "2", "--record", "--quiet"]) == 130  # on purpose
    assert seen["OUT_DIR"] == str(tmp_path / "results" / "01_set_rigl" / "cpu")
    capsys.readouterr()
    assert cli.main(["run", NB01, "-p", "EPOCHS", "2", "--out", str(tmp_path / "results" / "01_set_rigl" / "cpu")]) == 2
    assert "is the committed cpu record" in capsys.readouterr().err


def cli_resolve(*a):
    from sparsenb.nb.catalog import resolve
    return resolve(*a)


def test_ctrl_c_says_how_many_units_are_cached_and_exits_130(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    run = R.Run("01_set_rigl", "smoke", cli_resolve("01_set_rigl", "smoke"), out_dir=out)
    for i in range(3):
        run.cached(f"u{i}", dict)
    run.finish()  # an earlier finished run of this config: the total is known
    (out / "runs" / run.hash / "u2.json").unlink()

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", interrupted)
    assert cli.main(["run", NB01, "--profile", "smoke", "--out", str(out), "--quiet"]) == 130
    assert capsys.readouterr().err.splitlines()[-1] == \
        f"interrupted: 2 of 3 runs cached; re-run the same command to resume; {out / 'results.json'} is unchanged"


def test_failure_and_interrupt_leave_the_previous_record_intact(tmp_path, capsys):
    """Real kernels: a finished run, then a failing re-run and a Ctrl-C'd re-run of the same folder."""
    out = tmp_path / "out"
    nb = _dummy(tmp_path / "d.ipynb")
    assert cli.main(["run", nb, "--out", str(out), "--quiet"]) == 0
    before = (out / "results.json").read_text()
    assert json.loads(before)["metrics"] == {"total": 1.0}
    bad = _dummy(tmp_path / "bad.ipynb", body='import sparsenb\nsparsenb.data.load("no_such_dataset")')
    capsys.readouterr()
    assert cli.main(["run", bad, "--out", str(out), "--quiet", "-p", "UNITS", "2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    err = err[next(i for i, x in enumerate(err) if x.startswith("sparsenb run:")):]
    assert len(err) <= 5, err
    assert "failed in cell" in err[0] and 'sparsenb.data.load("no_such_dataset")' in err[0]
    assert err[1].lstrip().startswith(("ValueError:", "KeyError:", "FileNotFoundError:")), err
    assert str(out / "bad.ipynb") in err[-1] and "is unchanged" in err[-1]
    assert (out / "results.json").read_text() == before, "a failing run must not touch the record"
    # Ctrl-C from a terminal: SIGINT to the whole process group of `sparsenb run`
    p = subprocess.Popen([sys.executable, "-m", "sparsenb.nb.cli", "run", _dummy(tmp_path / "slow.ipynb", units=8, sleep=1.0),
                          "--out", str(out), "--quiet"], stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (out / "runs" / R.config_hash({"UNITS": 8}) / "u1.json").exists():
        time.sleep(0.2)
    __import__("os").killpg(p.pid, signal.SIGINT)
    _, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, stderr
    lines = [x for x in stderr.splitlines() if x.startswith("interrupted:")]
    assert len(lines) == 1 and "runs cached; re-run the same command to resume" in lines[0], stderr
    assert (out / "results.json").read_text() == before, "an interrupted run must not touch the record"


def test_verify_reruns_a_record_and_compares_every_metric(tmp_path, capsys):
    nb = _dummy(tmp_path / "d.ipynb")
    rec = tmp_path / "rec"
    assert cli.main(["run", nb, "--out", str(rec), "--quiet"]) == 0
    capsys.readouterr()
    argv = ["verify", nb, "--profile", "smoke", "--committed", str(rec / "results.json"), "--out", str(tmp_path / "v")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "total" in out and "yes" in out and "NO" not in out
    committed = json.loads((rec / "results.json").read_text())
    committed["metrics"]["total"] += 0.01
    (rec / "results.json").write_text(json.dumps(committed))
    assert cli.main(argv) == 1
    row = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("total"))
    assert row.split()[-1] == "NO" and "0.01" in row
    assert cli.main(argv + ["--tolerance", "0.02"]) == 0


def test_compare_metrics_walks_nested_values():
    rows = cli.compare_metrics({"a": {"b": [1.0, 2.0]}, "s": "x"}, {"a": {"b": [1.0, 2.5]}, "s": "x", "new": 1}, 0.1)
    assert [(k, ok) for k, _, _, _, ok in rows] == [("a/b[0]", True), ("a/b[1]", False), ("s", True), ("new", False)]


def test_run_refuses_an_interactive_notebook_and_points_to_jupyterlab(capsys):
    assert cli.main(["run", str(ROOT / "notebooks" / "00_explore.ipynb")]) == 2
    err = capsys.readouterr().err
    assert "interactive notebook with no record" in err and "jupyter lab" in err


def test_papermill_warning_about_checked_settings_is_dropped():
    """A spec setting missing from the parameters cell (e.g. 06's BIG_HIDDEN) takes effect, so
    papermill's "Passed unknown parameter" for it is dropped; other records pass."""
    import logging
    from sparsenb.nb.cli import _KnownParameters
    f = _KnownParameters({"BIG_HIDDEN": [10, 10], "PROFILE": "smoke"})

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("papermill", logging.WARNING, __file__, 1, msg, None, None)

    assert not f.filter(record("Passed unknown parameter: BIG_HIDDEN"))
    assert f.filter(record("Passed unknown parameter: SOMETHING_ELSE"))
    assert f.filter(record("Executing notebook with kernel: python3"))
