"""``sparsenb site``: the pages build from the record, load in headless Chromium without errors,
show every figure and formula offline, and their tables equal ``results/``."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from sparsenb.nb import site
from sparsenb.nb.catalog import NOTEBOOKS
from sparsenb.nb.claims import state_of
from sparsenb.nb.gallery import gallery_markdown, run_time_text
from sparsenb.nb.record import project_root

ROOT = project_root()
IN_CI = os.environ.get("CI", "").lower() == "true"


def test_inline_and_display_formulas_become_mathml_outside_code():
    out = site.markdown_with_math("Density $\\epsilon (n_{in}+n_{out})$ and\n\n$$\\frac{a}{b}$$\n\n"
                                  "price \\$5, code `$x$` stays")
    assert out.count("<math") == 2
    assert '<math display="block">' in out and "<mfrac>" in out
    assert "<msub><mi>n</mi><mrow><mi>i</mi><mi>n</mi></mrow></msub>" in out.replace("\n", "")
    assert "<code>$x$</code>" in out  # a code span is not a formula
    assert site.tex_to_mathml("p^\\*") == site.tex_to_mathml("p^*")  # Markdown's escaped star
    assert "http" not in out  # no namespace URL: nothing in a page points off the machine


def test_a_formula_latex2mathml_cannot_read_names_itself():
    with pytest.raises(ValueError, match=r"\\frac\{"):
        site.tex_to_mathml("\\frac{")


def test_performance_rows_read_ms_per_step_and_tolerate_no_benchmarks(tmp_path):
    assert site.performance_rows(tmp_path) == []
    (tmp_path / "results" / "benchmarks").mkdir(parents=True)
    (tmp_path / "results" / "benchmarks" / "b.json").write_text(json.dumps(
        {"results": {"mlp": {"ms_per_step": {"dense": 2.0, "masked": 2.5}}, "note": "x"}}))
    assert site.performance_rows(tmp_path) == [("b", "mlp", "dense", 2.0), ("b", "mlp", "masked", 2.5)]


def test_build_refuses_a_file_as_out(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ValueError, match="is a file"):
        site.build_site(tmp_path / "f")


def _formulas(stem: str) -> int:
    import nbformat

    nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    return sum(len(site._protect_math(c.source)[1]) for c in nb.cells if c.cell_type == "markdown")


def _cells(markdown_row: str) -> list[str]:
    """The cells of a gallery Markdown row as a browser shows them (Markdown emphasis and code removed)."""
    cells = [c.strip() for c in markdown_row.strip().strip("|").split(" | ")]
    return [re.sub(r"[*`]", "", c) for c in cells]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    return out, site.build_site(out)


def test_no_page_names_an_external_url(built):
    out, pages = built
    assert [p.name for p in pages] == ["index.html"] + [f"{s}.html" for s in sorted(NOTEBOOKS)]
    for page in pages:
        text = page.read_text()
        assert not re.search(r"https?://|(src|href)=[\"']?//|url\(\s*[\"']?//", text, re.I), page.name
        assert "<script" not in text, page.name


@pytest.mark.skipif(not Path(site.CHROMIUM).exists() and not IN_CI,
                    reason=f"{site.CHROMIUM} missing: `apt-get install -y chromium` (.ci/run installs it)")
def test_every_page_loads_offline_in_headless_chromium(built):
    out, pages = built
    broken = out / "_broken.html"  # the checks below can fail: a page with each fault
    broken.write_text('<img src="missing.png"><img src="http://offsite.invalid/x.png"><script>console.error("boom")'
                      '</script><p>$x$</p>')
    with site.serve(out) as base, site.Chromium() as browser:
        bad = browser.open(base + broken.name)
        reports = {p.name: browser.open(base + p.name) for p in pages}
    broken.unlink()
    assert any("boom" in e for e in bad["console_errors"]) and any("404" in e for e in bad["console_errors"])
    assert "http://offsite.invalid/x.png" in bad["requests"]
    assert [i["naturalWidth"] for i in bad["images"]] == [0, 0] and bad["math"] == 0
    for name, r in reports.items():
        assert r["console_errors"] == [], name
        assert r["requests"] and all(u.startswith(base) for u in r["requests"]), (name, r["requests"])
        assert all(i["complete"] and i["naturalWidth"] > 0 for i in r["images"]), (name, r["images"])
    for stem in sorted(NOTEBOOKS):
        r = reports[f"{stem}.html"]
        figures = sorted((ROOT / "figures" / stem / "cpu").glob("*.png"))
        assert sorted(Path(i["src"]).name for i in r["images"]) == [f.name for f in figures], stem
        # every $...$ of the notebook's Markdown is a MathML element the browser laid out
        assert r["math"] == r["math_native"] == _formulas(stem) > 0, stem
    index = reports["index.html"]
    # the reproduction table is the README gallery, row for row
    rows = [_cells(line) for line in gallery_markdown(ROOT).splitlines()[2:]]
    assert index["reproduction"] == rows
    # ... and it shows each record's claim states (independently of the gallery's code)
    for stem in sorted(NOTEBOOKS):
        path = ROOT / "results" / stem / "cpu" / "results.json"
        shown = [row[4] for row in index["reproduction"] if row[0] == stem]
        if not path.exists():
            assert shown == ["not run yet"], stem
            continue
        states = {state_of(c) for c in json.loads(path.read_text())["claims"]}
        named = {"did not hold": "not held"}
        assert shown and {named.get(s.split(":")[0], s.split(":")[0]) for s in shown} <= states, (stem, shown)
    assert [(r[0], r[3]) for r in index["notebooks"]] == [(s, run_time_text(s, ROOT)) for s in sorted(NOTEBOOKS)]
    bench = sorted((ROOT / "results" / "benchmarks").glob("*.json"))
    assert len(index["performance"]) == len(site.performance_rows(ROOT)) > 0 if bench else index["performance"] == []


def test_cli_site_names_a_bad_out_and_exits_2(tmp_path, capsys):
    from sparsenb.nb.cli import main

    (tmp_path / "f").write_text("")
    assert main(["site", "--out", str(tmp_path / "f")]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err
