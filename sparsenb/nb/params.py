"""A notebook's parameters: read from its ``parameters`` cell, checked before any work starts.

Every notebook's ``parameters`` cell holds one annotated literal per line with
one comment each, e.g.::

    PROFILE: str = "cpu"        # smoke | cpu | paper
    EPOCHS: int = None          # training epochs per run (None: profile value)

:func:`read_parameters` turns such a cell into :class:`Param` specs (name,
annotated type, default, comment, and the allowed values when the comment
starts with ``a | b | c``). :func:`check` validates a dict of values against
those specs and the catalog's profiles and raises one :class:`ParameterError`
whose one-line message names the problem and the fix:

- an unknown name (with the closest valid name, by :mod:`difflib`);
- a wrong type (``EPOCHS="abc"``), a scalar where a list is expected
  (``SPARSITIES=0.9``), list elements of the wrong kind;
- a value outside the stated choices, an unknown profile;
- a number outside the range its name implies (:data:`RANGES`: a sparsity or dropout in
  ``[0, 1)``, a density in ``(0, 1]``, a learning rate ``> 0``, ...), checked in lists and
  dict values too (``-p DROPOUT 1.5``, ``SPARSITIES=[0.9, 1.0]``).

The same check runs in two places: ``sparsenb run`` calls it on the ``-p``
values before papermill starts a kernel, and :func:`sparsenb.nb.catalog.resolve`
calls it on the overrides inside the notebook's settings cell (so a notebook
run by papermill or Jupyter directly is checked the same way). Papermill itself
only warns about an unknown name; :func:`check_notebook` catches it before
``papermill.execute_notebook``::

    snb.nb.params.check_notebook("notebooks/01_set_rigl.ipynb", {"EPOCH": 5})  # ParameterError: did you mean EPOCHS?

A type is accepted when it matches the annotation or the type of the
parameter's value in any catalog profile (``07_ctre``'s ``EPOCHS`` is an int or
a dict); an int is accepted where a float is; ``None`` is accepted where the
default is ``None`` (it means "the profile's value").
"""
from __future__ import annotations

import ast
import difflib
import functools
import io
import json
import math
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Param", "ParameterError", "RANGES", "read_parameters", "parse_parameters", "notebook_spec", "check",
           "check_notebook"]

_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict}


# The ranges that parameter names imply, the same in every notebook: (names, low, high, low
# included, high included, what). A name is matched exactly or, for "*_X", by its suffix "_X"
# (HIGH_SPARSITY, DEEP_SPARSITIES, DENSE_DROPOUT, GATE_LR, ...). Every number in the value is
# checked, in lists and dict values too; None ("the profile's value") is not.
RANGES: tuple[tuple[tuple[str, ...], float, float, bool, bool, str], ...] = (
    (("SPARSITY", "SPARSITIES", "*_SPARSITY", "*_SPARSITIES", "P_GRID", "MLP_P", "DYNAMICS_P"),
     0.0, 1.0, True, False, "a fraction of weights pruned"),
    (("DENSITY", "DENSITIES", "*_DENSITIES"), 0.0, 1.0, False, True, "a fraction of weights kept"),
    (("DROPOUT", "*_DROPOUT"), 0.0, 1.0, True, False, "a dropout probability"),
    (("ZETA", "DROP_FRACTION"), 0.0, 1.0, True, False, "a fraction of connections dropped per update"),
    (("MOMENTUM",), 0.0, 1.0, True, False, "a momentum factor"),
    (("LR", "*_LR"), 0.0, math.inf, False, False, "a learning rate"),
    (("EPSILON", "*_EPSILON"), 0.0, math.inf, False, False, "an Erdős–Rényi density parameter"),
    (("WEIGHT_DECAY", "*_WEIGHT_DECAY"), 0.0, math.inf, True, False, "a weight decay"),
    (("EPOCHS", "SEEDS", "*_SEEDS", "BATCH_SIZE", "*_BATCH_SIZE", "ROUNDS"), 1, math.inf, True, False, "a count"),
)


def _range(name: str) -> tuple[float, float, bool, bool, str] | None:
    for names, *interval in RANGES:
        if any(name == n or (n.startswith("*_") and name.endswith(n[1:])) for n in names):
            return tuple(interval)
    return None


def _numbers(value: Any):
    """Every int/float in ``value``, through lists, tuples and dict values (bools are not numbers here)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)


def _interval(low: float, high: float, low_in: bool, high_in: bool) -> str:
    if high == math.inf:
        return f"{'>=' if low_in else '>'} {low:g}"
    return f"in {'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'}"


class ParameterError(ValueError):
    """A parameter value that cannot work; the message is one line that names the fix."""


@dataclass(frozen=True)
class Param:
    """One line of a ``parameters`` cell: ``NAME: type = default  # comment``."""

    name: str
    types: tuple[type, ...]  # accepted types (annotation plus the profiles' value types); empty = any
    default: Any
    comment: str = ""
    choices: tuple[str, ...] = ()  # allowed values stated in the comment as "a | b | c"
    examples: dict[str, Any] = field(default_factory=dict)  # profile -> its value, shown in error messages


def _choices(comment: str) -> tuple[str, ...]:
    """``"smoke | cpu | paper"`` -> ("smoke", "cpu", "paper"); ``"device: auto | cpu"`` -> ("auto", "cpu")."""
    if " | " not in comment:
        return ()
    out = []
    for segment in comment.split("|"):
        token = re.match(r"\s*([\w.-]+)", segment.rsplit(":", 1)[-1])
        if not token:
            return ()
        out.append(token.group(1))
    return tuple(out)


def parse_parameters(source: str) -> dict[str, Param]:
    """The :class:`Param` of every assignment in a ``parameters`` cell's source."""
    comments = {tok.start[0]: tok.string.lstrip("#").strip()
                for tok in tokenize.generate_tokens(io.StringIO(source).readline) if tok.type == tokenize.COMMENT}
    params = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name, annotation = node.target.id, getattr(node.annotation, "id", None)
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name, annotation = node.targets[0].id, None
        else:
            continue
        comment = comments.get(node.lineno, "")
        types = (_TYPES[annotation],) if annotation in _TYPES else ()
        params[name] = Param(name, types, ast.literal_eval(node.value), comment, _choices(comment))
    return params


def read_parameters(path: str | Path) -> dict[str, Param]:
    """The parameters of the notebook at ``path`` (its cell tagged ``parameters``); {} if it has none."""
    nb = json.loads(Path(path).read_text())
    for cell in nb.get("cells", []):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            src = cell["source"]
            return parse_parameters("".join(src) if isinstance(src, list) else src)
    return {}


def _with_profiles(params: dict[str, Param], profiles: dict[str, dict] | None) -> dict[str, Param]:
    """Add the profiles' keys and value types to the notebook's specs."""
    if not profiles:
        return params
    out = dict(params)
    for name in set().union(*profiles.values()):
        values = {profile: p[name] for profile, p in profiles.items() if name in p}
        old = out.get(name)
        kinds = tuple(dict.fromkeys(type(v) for v in values.values() if v is not None))
        if old is None:
            out[name] = Param(name, kinds, None, examples=values)
        else:
            types = old.types + tuple(t for t in kinds if t not in old.types) if old.types else ()
            out[name] = Param(name, types, old.default, old.comment, old.choices, values)
    if "PROFILE" in out:
        p = out["PROFILE"]
        out["PROFILE"] = Param("PROFILE", (str,), p.default, p.comment, tuple(profiles), p.examples)
    return out


@functools.lru_cache(maxsize=64)
def _cached_read(path: str, mtime: float) -> dict[str, Param]:
    return read_parameters(path)


def notebook_spec(stem: str, path: str | Path | None = None) -> dict[str, Param]:
    """Specs of notebook ``stem``: its ``parameters`` cell (``path``, default the project's
    ``notebooks/<stem>.ipynb`` if it exists) merged with its catalog profiles (if it has any)."""
    from .catalog import NOTEBOOKS
    from .record import project_root

    path = Path(path) if path else project_root() / "notebooks" / f"{stem}.ipynb"
    params = _cached_read(str(path), path.stat().st_mtime) if path.exists() else {}
    nb = NOTEBOOKS.get(stem)
    return _with_profiles(params, nb.profiles if nb else None)


def _type_names(types: tuple[type, ...]) -> str:
    names = " or ".join(t.__name__ for t in types)
    return ("an " if names[0] in "aeiou" else "a ") + names


def _example(p: Param, profile: str | None) -> str:
    if p.examples.get(profile) is not None:
        return f" (the {profile} profile's: {p.examples[profile]!r})"
    shown = [v for v in p.examples.values() if v is not None] or ([p.default] if p.default is not None else [])
    return f" (e.g. {shown[0]!r})" if shown else ""


def _kind(x: Any) -> str:
    return "number" if isinstance(x, (int, float)) and not isinstance(x, bool) else type(x).__name__


def _check_value(p: Param, value: Any, profile: str | None = None) -> None:
    if value is None:
        if p.default is None or not p.types:
            return
        raise ParameterError(f"{p.name} cannot be None{_example(p, profile)}")
    if p.types:
        ok = any(isinstance(value, t) and not (isinstance(value, bool) and t is not bool)
                 or (t is float and isinstance(value, int) and not isinstance(value, bool))
                 or (t is list and isinstance(value, tuple)) for t in p.types)
        if not ok:
            hint = " in brackets" if list in p.types and dict not in p.types else ""
            raise ParameterError(f"{p.name} must be {_type_names(p.types)}{hint}{_example(p, profile)}; "
                                 f"got {value!r} ({type(value).__name__})")
    if p.choices and isinstance(value, str) and not any(value == c or value.startswith(c + ":") for c in p.choices):
        close = difflib.get_close_matches(value, p.choices, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ParameterError(f"{p.name} must be one of {' | '.join(p.choices)}; got {value!r}{hint}")
    if isinstance(value, (list, tuple)):
        wanted = {_kind(x) for ex in p.examples.values() if isinstance(ex, (list, tuple)) for x in ex}
        if len(wanted) == 1:
            bad = [x for x in value if _kind(x) not in wanted]
            if bad:
                raise ParameterError(f"{p.name} must be a list of {wanted.pop()}s{_example(p, profile)}; "
                                     f"{bad[0]!r} is a {_kind(bad[0])}")
    interval = _range(p.name)
    if interval is not None:
        low, high, low_in, high_in, what = interval
        for x in _numbers(value):
            if not ((low < x or (low_in and x == low)) and (x < high or (high_in and x == high))):
                where = "" if x is value else f" (in {value!r})"
                raise ParameterError(f"{p.name} must be {_interval(low, high, low_in, high_in)}, {what}"
                                     f"{_example(p, profile)}; got {x!r}{where}")


def check(spec: dict[str, Param], values: dict[str, Any], where: str = "", profile: str | None = None) -> None:
    """Raise :class:`ParameterError` for the first bad entry of ``values`` (names, types, choices, ranges).

    ``where`` names the notebook in the message (e.g. ``"01_set_rigl"``); ``profile`` picks the
    example value shown.
    """
    of = f" of {where}" if where else ""
    for name, value in values.items():
        if name not in spec:
            close = difflib.get_close_matches(name, list(spec), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}?" if close else f"parameters are {', '.join(sorted(spec))}"
            raise ParameterError(f"unknown parameter {name}{of}; {hint}")
        _check_value(spec[name], value, profile)


def check_notebook(path: str | Path, values: dict[str, Any]) -> None:
    """:func:`check` the papermill ``parameters`` for the notebook at ``path`` (its parameters cell
    and, if its stem is in the catalog, its profiles)."""
    path = Path(path)
    check(notebook_spec(path.stem, path), values, where=path.stem, profile=values.get("PROFILE"))
