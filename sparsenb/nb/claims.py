"""Claim states: when a comparison between trained arms says something, and when it cannot.

A claim recorded with :meth:`sparsenb.Run.claim` has one of four states:

- ``"held"`` / ``"not held"``: the comparison was made and came out this way;
- ``"inconclusive"``: the comparison was made but cannot support either answer, e.g. an arm
  is at chance level or never got better than after its first epoch (it did not train, so
  "A beats B" only compares two untrained nets);
- ``"not evaluated"``: the comparison could not be made, e.g. no published reference exists
  for the dataset used.

The last two always carry a reason. The rules, fixed once for every notebook:

- **at chance**: accuracy no better than 1.5x chance, ``acc <= chance + 0.5 * min(chance, 0.1)``
  with ``chance = 1 / num_classes``. For ten or more classes this is exactly 1.5x chance
  (10 classes: 15 %); with fewer classes the margin stays 5 points (2 classes: 55 %,
  not 75 %, so that a binary task with a weak but real signal is not called chance).
  On an imbalanced test set, a notebook that passes ``majority`` (the share of the test set's
  most frequent class: what always answering that class scores) also counts an accuracy no
  better than that share as chance (Cora's test split: 31.9 %, above the 19.3 % of 7 classes).
- **never improved**: no epoch after the first has a better value than the first one
  (validation accuracy by default; ``higher_is_better=False`` for losses).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

__all__ = ["STATES", "HELD", "NOT_HELD", "INCONCLUSIVE", "NOT_EVALUATED", "chance_threshold", "at_chance",
           "never_improved", "comparison", "state_of", "check_state"]

HELD, NOT_HELD, INCONCLUSIVE, NOT_EVALUATED = "held", "not held", "inconclusive", "not evaluated"
STATES = (HELD, NOT_HELD, INCONCLUSIVE, NOT_EVALUATED)
CHANCE_FACTOR = 1.5


def chance_threshold(num_classes: int, factor: float = CHANCE_FACTOR) -> float:
    """The highest accuracy that still counts as chance level for ``num_classes`` balanced classes."""
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
    chance = 1.0 / num_classes
    return chance + (factor - 1.0) * min(chance, 0.1)


def at_chance(acc: float, num_classes: int, factor: float = CHANCE_FACTOR) -> bool:
    """True if accuracy ``acc`` (a fraction in [0, 1]) is no better than chance level (see the module doc)."""
    if not 0.0 <= acc <= 1.0:
        raise ValueError(f"accuracy must be a fraction in [0, 1], got {acc!r}")
    return acc <= chance_threshold(num_classes, factor) + 1e-12


def never_improved(history: Sequence[float], higher_is_better: bool = True) -> bool:
    """True if no value after the first beats the first (one value per epoch, e.g. validation accuracy).

    A history of one epoch never improved by definition; an empty one is an error.
    """
    values = [float(v) for v in history]
    if not values:
        raise ValueError("never_improved needs at least one epoch's value")
    first, rest = values[0], values[1:]
    return not any((v > first) if higher_is_better else (v < first) for v in rest if math.isfinite(v))


def comparison(holds: bool, acc: Mapping[str, float], num_classes: int | Mapping[str, int],
               histories: Mapping[str, Sequence[float]] | None = None,
               factor: float = CHANCE_FACTOR, majority: float | None = None) -> tuple[str, str]:
    """``(state, reason)`` of a claim that compares trained arms.

    Args:
        holds: what the comparison itself says (e.g. ``acc["CTRE"] > acc["SET"]``).
        acc: arm name -> test accuracy (fraction) of every arm the claim compares; name the
            dataset in the arm's name when the claim spans several (``"Yale/SET"``).
        num_classes: classes of the task, or arm name -> classes when the arms' tasks differ.
        histories: arm name -> per-epoch values (e.g. validation accuracy, higher is better)
            for the arms whose training curve is at hand.
        majority: share of the test set's most frequent class (a fraction), when the arms share
            one test set; an arm no better than it is at chance too (see the module doc).

    Returns ``("inconclusive", reason)`` if any arm is at chance or never improved after its
    first epoch (the reason names the arms and what the comparison alone would say), else
    ``("held", "")`` or ``("not held", "")``.
    """
    problems = []
    classes = num_classes if isinstance(num_classes, Mapping) else {a: num_classes for a in acc}
    if majority is not None and not 0.0 < majority < 1.0:
        raise ValueError(f"majority must be the most frequent class's share of the test set, in (0, 1); got {majority!r}")
    chance = [a for a, v in acc.items() if at_chance(v, classes[a], factor)]
    if chance:
        limits = sorted({classes[a] for a in chance})
        problems.append(f"{', '.join(f'{a} {100 * acc[a]:.1f} %' for a in chance)} at chance level ("
                        + "; ".join(f"<= {100 * chance_threshold(c, factor):.1f} % for {c} classes" for c in limits)
                        + ")")
    below = [a for a, v in acc.items() if a not in chance and majority is not None and v <= majority + 1e-12]
    if below:
        problems.append(f"{', '.join(f'{a} {100 * acc[a]:.2f} %' for a in below)} no better than always answering "
                        f"the test set's most frequent class ({100 * majority:.1f} %)")
    stuck = [a for a, h in (histories or {}).items() if never_improved(h)]
    if stuck:
        problems.append(f"{', '.join(stuck)} never better than after the first epoch")
    if problems:
        return INCONCLUSIVE, "; ".join(problems) + f" (the comparison alone: {HELD if holds else NOT_HELD})"
    return (HELD if holds else NOT_HELD), ""


def check_state(state: str, reason: str) -> None:
    """Raise a clear error for an unknown state or a missing reason."""
    if state not in STATES:
        raise ValueError(f"unknown claim state {state!r}; use one of {', '.join(map(repr, STATES))}")
    if state in (INCONCLUSIVE, NOT_EVALUATED) and not reason:
        raise ValueError(f"a claim that is {state!r} needs its reason: pass reason='...'")


def state_of(claim: Mapping) -> str:
    """The state of a recorded claim; records written before states existed have only ``holds``."""
    if claim.get("state"):
        return claim["state"]
    return HELD if claim["holds"] else NOT_HELD
