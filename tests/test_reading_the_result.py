"""Every number quoted in a notebook's "Reading the result" text is a number of its committed cpu record.

The text after the results is written by hand; this test checks each number in it against
``results/<stem>/cpu/results.json``. A quoted number ``x`` with ``d`` decimals matches when some record
value ``v`` rounds to it (``|v - x| <= 0.5 * 10**-d``), where the record values are:

- every number in ``metrics`` and ``config`` (nested lists and dicts included), as is and times 100
  (a fraction quoted as a percentage), and ``seconds`` / ``work.unit_seconds`` in minutes;
- every number written in a claim's ``detail`` or ``reason`` (the notebook formats them from the record);
- differences ``a - b`` (as is and times 100, "ahead by 0.43 points") between two metrics that measure
  the same thing in two arms: names of as many ``/`` parts that differ in one part, not the last
  (``set/0.9/test_acc_mean`` and ``rigl/0.9/test_acc_mean``).

Signs are ignored (the text says "ahead by" / "below"), and thousands separators are read. A number
that is not a record value (a paper's number, a count or setting named in the prose, arithmetic like
"1 - 0.8^5 = 67 %") is listed in :data:`EXEMPT` for its notebook, by its text exactly as written.

How much this catches: :func:`test_the_check_catches_most_wrong_digits` changes one digit of every
checked number, every digit to every other value, and requires that most of the changed numbers
no longer match (the rate is printed; see the test).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Reading the result"
NUMBER = re.compile(r"(?<![\w.^])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w^])( ?(?:%|min\b|s\b|ms\b|points?\b))?")

# Numbers in the reading text that are not values of the record (text as written, per notebook): counts
# and settings named in the prose, the papers' numbers, earlier records and uncommitted runs the text
# compares with, per-seed values and training losses shown in cells but not recorded, arithmetic
# ("1 - 0.8^5 = 67 %"), architecture names (LeNet-300-100). Reviewed one by one when the test was written.
EXEMPT: dict[str, set[str]] = {
    "01_set_rigl": {"1", "8", "12", "17", "80"},
    "02_pruning_at_init": {"5", "10", "28", "40", "43", "53", "300", "500", "1,000", "25,000", "400,000"},
    "03_lottery_tickets": {"50", "5,000"},
    "04_random_search": {"0.005", "0.64", "0.97"},
    "05_pruning_fraction": {"0.0135", "0.016", "49", "52", "150", "160", "784"},
    "06_truly_sparse": {"0.43", "3.8", "12", "12.3", "14", "16", "29", "31", "85.94", "86.11", "86.25", "86.54", "250"},
    "07_ctre": {"12", "16", "28", "54", "60", "70", "80", "128", "144"},
    "08_free_tickets": {"0.52", "17.7", "18", "25", "28", "42", "250", "450"},
    "09_sup_tickets": {"2.9", "8.8", "9", "12", "12.5", "31", "32", "41.26", "41.29", "42.70", "42.78", "44.18",
        "44.78", "47", "226", "250", "3,100"},
    "10_dsn": {"2", "6", "13", "47", "1,000", "1,029"},
    "11_ugts": {"1.10", "1.87", "1.95", "5", "5.95", "6.8", "7", "18", "31.9", "35.4", "54.2", "55.4", "62.7",
        "73.1", "74.55", "75.1", "75.8", "77.7", "79.6", "81.3", "448", "900"},
    "12_slak": {"0.0269", "0.0587", "0.0928", "0.1129", "0.38", "0.6", "0.6988", "0.70", "0.7794", "0.78", "0.95",
        "1.01", "1.27", "1.36", "1.38", "1.39", "1.44", "2.7", "6", "47.62", "47.74", "49", "49.73", "50.08", "54",
        "335", "2,000", "10,000"},
    "13_alacpd": {"2", "12", "13", "16", "22", "23", "24", "46", "58", "77", "201", "217"},
    # 14: standard error, paper settings (ResNet-32, VGG-19, 30 epochs, batch 256), ranges read off a figure,
    # and the exploratory cifar10-jpeg run the text quotes as outside the record
    "14_lottery_jackpots": {"0.37", "5,000", "6", "7", "19", "20", "23", "30", "32", "93", "256", "68.9", "9.6",
        "41.3", "64.5", "57.5", "11.4", "72.9", "53.7", "16.3", "26.6", "36,864", "109", "57.1", "474"},
    "15_polarization_gates": {"68.4", "70.0", "450", "46,864"},
    # 16: frozen-neuron counts of the capacity cell (n of 16/32/64/512/512), and the scratch runs the text
    # quotes as outside the record (3 seeds; cifar10-jpeg at 12 epochs), the paper's 40 epochs
    "16_afaf": {"16", "32", "150", "512", "231", "393", "0.358", "0.921", "0.807", "0.026", "0.404", "0.258", "0.529",
        "0.445", "0.597", "0.118", "0.156", "0.991", "12", "0.672", "0.216", "291", "0.78", "0.301", "0.049",
        "0.559", "0.121", "0.136", "0.783", "0.802", "0.019", "0.186", "0.187", "40"},
    "17_sparseland": {"1.10", "9", "10", "300", "2022", "0.85", "88"},  # 0.85: the previous record; 88: % of weights in the input layer
}


def reading_text(stem: str) -> str:
    nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    texts = [c.source for c in nb.cells if c.cell_type == "markdown" and c.source.startswith(HEADING)]
    return "\n".join(texts)


def quoted_numbers(text: str) -> list[tuple[str, float, int | None]]:
    """``[(as written, value, decimals)]`` of every number in ``text``, leaving out code spans, LaTeX and
    link targets. A whole number is rounded (``decimals`` 0) when a unit follows it (``%``, ``min``, ``s``,
    ``ms``, ``points``) or it is at least 100; otherwise it is a count or a setting, ``decimals`` is
    ``None`` and it must equal a record value exactly (a rounded small integer would match almost anything)."""
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\$[^$]*\$", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    out = []
    for m in NUMBER.finditer(text):
        whole, frac, pct = m.group(1), m.group(2) or "", m.group(3)
        value = float(whole.replace(",", "") + frac)
        decimals = len(frac) - 1 if frac else (0 if pct or value >= 100 else None)
        out.append((whole + frac, value, decimals))
    return out


def _leaves(x, out: list[float]) -> None:
    if isinstance(x, bool) or x is None:
        return
    if isinstance(x, (int, float)):
        out.append(float(x))
    elif isinstance(x, dict):
        for v in x.values():
            _leaves(v, out)
    elif isinstance(x, (list, tuple)):
        for v in x:
            _leaves(v, out)


def record_values(record: dict) -> list[float]:
    """The numbers a reading text may quote from ``record`` (see the module docstring), all >= 0."""
    base: list[float] = []
    _leaves(record.get("metrics", {}), base)
    _leaves(record.get("config", {}), base)
    values = base + [100 * v for v in base]
    for key in ("seconds",):
        if isinstance(record.get(key), (int, float)):
            values += [record[key], record[key] / 60]
    unit = record.get("work", {}).get("unit_seconds")
    if isinstance(unit, (int, float)):
        values += [unit, unit / 60]
    for c in record.get("claims", []):
        for field in ("detail", "reason"):
            values += [v for _, v, _ in quoted_numbers(c.get(field) or "")]
    metrics = {k: float(v) for k, v in record.get("metrics", {}).items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    parts = {k: k.split("/") for k in metrics}
    names = list(metrics)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            pa, pb = parts[a], parts[b]
            if len(pa) == len(pb) and pa[-1] == pb[-1] and sum(x != y for x, y in zip(pa, pb)) == 1:
                values += [metrics[a] - metrics[b], 100 * (metrics[a] - metrics[b])]
    return sorted({abs(v) for v in values})


def matches(value: float, decimals: int | None, values: list[float]) -> bool:
    """True if some record value rounds to ``value`` at ``decimals`` decimals (``None``: equals it)."""
    import bisect
    tol = 1e-9 if decimals is None else 0.5 * 10 ** -decimals + 1e-9
    i = bisect.bisect_left(values, value - tol)
    return i < len(values) and values[i] <= value + tol


def _record(stem: str) -> dict:
    return json.loads((ROOT / "results" / stem / "cpu" / "results.json").read_text())


def unmatched(stem: str) -> list[str]:
    """The quoted numbers of ``stem``'s reading text that match no record value and are not exempt."""
    values = record_values(_record(stem))
    exempt = EXEMPT.get(stem, set())
    return [s for s, v, d in quoted_numbers(reading_text(stem)) if s not in exempt and not matches(v, d, values)]


def _stems() -> list[str]:
    from sparsenb.nb.catalog import NOTEBOOKS
    return sorted(NOTEBOOKS)


@pytest.mark.parametrize("stem", _stems())
def test_every_number_in_the_reading_text_is_a_record_value_or_exempt(stem):
    assert reading_text(stem), f"{stem} has no '{HEADING}' cell"
    assert unmatched(stem) == [], (f"{stem}: numbers in '{HEADING}' that are no value of "
                                   f"results/{stem}/cpu/results.json (fix the text, or exempt a paper number)")


@pytest.mark.parametrize("stem", _stems())
def test_exempt_numbers_are_still_in_the_text(stem):
    """An exemption whose number left the text is stale: remove it (so the list stays the prose's)."""
    quoted = {s for s, _, _ in quoted_numbers(reading_text(stem))}
    assert EXEMPT.get(stem, set()) <= quoted, sorted(EXEMPT.get(stem, set()) - quoted)


def _one_digit_changes(s: str) -> list[str]:
    return [s[:i] + d + s[i + 1:] for i, ch in enumerate(s) if ch.isdigit() for d in "0123456789"
            if d != ch and not (i == 0 and d == "0" and len(s) > 1 and s[1] != ".")]


def catch_rate(stems: list[str] | None = None) -> tuple[int, int]:
    """``(caught, changed)``: of every one-digit change of every checked (matching, not exempt) number in
    the reading texts, how many no longer match a record value."""
    caught = changed = 0
    for stem in stems or _stems():
        values = record_values(_record(stem))
        exempt = EXEMPT.get(stem, set())
        for s, v, d in quoted_numbers(reading_text(stem)):
            if s in exempt or not matches(v, d, values):
                continue
            for t in _one_digit_changes(s):
                changed += 1
                caught += not matches(float(t.replace(",", "")), d, values)
    return caught, changed


def test_the_check_catches_most_wrong_digits(capsys):
    caught, changed = catch_rate()
    with capsys.disabled():
        print(f"\nreading-text check: {caught} of {changed} one-digit changes caught ({100 * caught / changed:.1f} %)")
    assert changed > 1000 and caught / changed >= 0.6


def test_the_matcher_reads_numbers_as_written():
    assert quoted_numbers("ahead by 0.43 points (85.94 vs 86.25 %), 1,000,000 neurons, 67 %, `EPOCHS=20`, $10^3$") == [
        ("0.43", 0.43, 2), ("85.94", 85.94, 2), ("86.25", 86.25, 2), ("1,000,000", 1e6, 0), ("67", 67.0, 0)]
    assert quoted_numbers("3 seeds, 58 min") == [("3", 3.0, None), ("58", 58.0, 0)]
    rec = {"metrics": {"a/test_acc_mean": 0.8625, "b/test_acc_mean": 0.8594, "c/x/test_acc_mean": 0.5},
           "config": {"EPOCHS": 20}}
    values = record_values(rec)
    assert matches(86.25, 2, values) and matches(0.31, 2, values) and matches(20, None, values)
    assert not matches(86.26, 2, values) and not matches(0.33, 2, values) and not matches(86, None, values)
    assert matches(86, 0, values), "86 % is 0.8625 rounded"
    assert not matches(36.25, 2, values), "no difference between metrics of different shapes"


if __name__ == "__main__":  # python tests/test_reading_the_result.py: the unmatched numbers per notebook
    for stem in _stems():
        print(stem, unmatched(stem))
    print("caught / changed:", catch_rate())
    for kind, keep in (("decimals", lambda d: d), ("whole %", lambda d: d == 0), ("counts", lambda d: d is None)):
        c = n = 0
        for stem in _stems():
            values = record_values(_record(stem))
            for s, v, d in quoted_numbers(reading_text(stem)):
                if (d is None if kind == "counts" else (d == 0 if kind == "whole %" else bool(d))) and matches(v, d, values) and s not in EXEMPT.get(stem, set()):
                    for t in _one_digit_changes(s):
                        n += 1
                        c += not matches(float(t.replace(",", "")), d, values)
        print(kind, c, n, round(c / max(n, 1), 3))
