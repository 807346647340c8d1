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
