"""Parameters checked before work starts: the parameters-cell reader and the one shared validator."""
import pytest

import sparsenb as snb
from sparsenb.nb import params as P

CELL = '''PROFILE: str = "cpu"        # smoke | cpu | paper
SPARSITIES: list = None     # e.g. [0.9, 0.95] (None: profile value)
EPOCHS: int = None          # training epochs (None: profile value)
LR: float = None            # learning rate
DEVICE: str = "auto"        # device of the check: auto | cpu | cuda | mps
PROGRESS: bool = True       # progress bars
OUT_DIR: str = None         # results folder
'''


def test_parse_reads_names_types_defaults_and_choices():
    spec = P.parse_parameters(CELL)
    assert list(spec) == ["PROFILE", "SPARSITIES", "EPOCHS", "LR", "DEVICE", "PROGRESS", "OUT_DIR"]
    assert spec["EPOCHS"].types == (int,) and spec["EPOCHS"].default is None
    assert spec["PROFILE"].choices == ("smoke", "cpu", "paper") and spec["PROFILE"].default == "cpu"
    assert spec["DEVICE"].choices == ("auto", "cpu", "cuda", "mps")  # text before the colon is not a choice
    assert spec["SPARSITIES"].choices == () and spec["PROGRESS"].types == (bool,)


@pytest.mark.parametrize("values, message", [
    ({"EPOCH": 5}, "unknown parameter EPOCH; did you mean EPOCHS?"),
    ({"EPOCHS": "abc"}, "EPOCHS must be an int"),
    ({"EPOCHS": 2.5}, "EPOCHS must be an int"),
    ({"EPOCHS": True}, "EPOCHS must be an int"),
    ({"SPARSITIES": 0.9}, "SPARSITIES must be a list in brackets"),
    ({"PROFILE": "gpu"}, "PROFILE must be one of smoke | cpu | paper; got 'gpu'; did you mean 'cpu'?"),
    ({"DEVICE": None}, "DEVICE cannot be None"),
    ({"PROGRESS": 1}, "PROGRESS must be a bool"),
])
def test_bad_values_give_one_line_that_names_the_fix(values, message):
    with pytest.raises(P.ParameterError) as e:
        P.check(P.parse_parameters(CELL), values)
    assert message in str(e.value) and "\n" not in str(e.value)


RANGED = P.parse_parameters('''SPARSITIES: list = None     # pruned fractions
DEEP_SPARSITIES: list = None
DENSITY: float = None       # kept fraction
DROPOUT: float = 0.3        # dropout
GATE_LR: float = 0.01       # gate learning rate
LR_MIN: float = 0.0         # cosine floor (no range implied by the name)
EPOCHS = None               # an int, or a dict of ints per model
SEEDS: int = 3              # seeds per arm
BIG_EPSILON: int = 1        # ER epsilon
''')


@pytest.mark.parametrize("values, message", [
    ({"DROPOUT": 1.5}, "DROPOUT must be in [0, 1), a dropout probability (e.g. 0.3); got 1.5"),
    ({"SPARSITIES": [0.9, 1.0]}, "SPARSITIES must be in [0, 1), a fraction of weights pruned; got 1.0 (in [0.9, 1.0])"),
    ({"DEEP_SPARSITIES": [-0.1]}, "DEEP_SPARSITIES must be in [0, 1)"),
    ({"DENSITY": 0}, "DENSITY must be in (0, 1], a fraction of weights kept; got 0"),
    ({"GATE_LR": -0.01}, "GATE_LR must be > 0, a learning rate (e.g. 0.01); got -0.01"),
    ({"EPOCHS": {"lenet300": 8, "lenet5": 0}}, "EPOCHS must be >= 1, a count; got 0 (in {'lenet300': 8, 'lenet5': 0})"),
    ({"SEEDS": 0}, "SEEDS must be >= 1, a count (e.g. 3); got 0"),
    ({"BIG_EPSILON": -1}, "BIG_EPSILON must be > 0, an Erdős–Rényi density parameter (e.g. 1); got -1"),
])
def test_numbers_outside_the_range_their_name_implies_are_refused(values, message):
    with pytest.raises(P.ParameterError) as e:
        P.check(RANGED, values)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_range_edges_and_unranged_names_pass():
    P.check(RANGED, {"SPARSITIES": [0.0, 0.999], "DENSITY": 1.0, "DROPOUT": 0.0, "GATE_LR": 1e-9,
                     "LR_MIN": 0.0, "EPOCHS": {"lenet300": 1}, "SEEDS": 1, "DEEP_SPARSITIES": None})


def test_good_values_pass():
    P.check(P.parse_parameters(CELL), {"EPOCHS": 5, "LR": 1, "SPARSITIES": (0.9,), "DEVICE": "cuda:1", "OUT_DIR": None})


def test_catalog_profiles_add_types_and_list_element_kinds():
    spec = P.notebook_spec("07_ctre")  # EPOCHS: an int in one profile, a dict per dataset in another
    P.check(spec, {"EPOCHS": 3}, profile="smoke")
    P.check(spec, {"EPOCHS": {"madelon": 3}}, profile="smoke")
    with pytest.raises(P.ParameterError, match="list of numbers"):
        P.check(P.notebook_spec("01_set_rigl"), {"SPARSITIES": ["a"]}, profile="cpu")
    with pytest.raises(P.ParameterError, match="one of smoke \\| cpu \\| scale \\| paper"):
        P.check(P.notebook_spec("06_truly_sparse"), {"PROFILE": "huge"})


def test_resolve_validates_overrides_the_same_way():
    """The settings cell of every notebook calls resolve: papermill/Jupyter users get the same check."""
    with pytest.raises(P.ParameterError, match="EPOCHS must be an int .*cpu profile's: 30.*got 'abc'"):
        snb.nb.catalog.resolve("01_set_rigl", "cpu", {"EPOCHS": "abc"})
    with pytest.raises(P.ParameterError, match="SPARSITIES must be a list"):
        snb.nb.catalog.resolve("01_set_rigl", "cpu", {"SPARSITIES": 0.9})
    with pytest.raises(ValueError, match="did you mean EPOCHS"):
        snb.nb.catalog.resolve("01_set_rigl", "cpu", {"EPOCH": 5})
    assert snb.nb.catalog.resolve("01_set_rigl", "cpu", {"EPOCHS": 5}).EPOCHS == 5


@pytest.mark.parametrize("stem", sorted(snb.nb.catalog.NOTEBOOKS))
def test_every_profile_passes_its_own_check(stem):
    spec = P.notebook_spec(stem)
    for profile, values in snb.nb.catalog.NOTEBOOKS[stem].profiles.items():
        P.check(spec, {"PROFILE": profile, **values}, where=stem, profile=profile)


def test_papermill_users_can_check_names_before_executing():
    from pathlib import Path
    nb = Path(__file__).resolve().parents[1] / "notebooks" / "01_set_rigl.ipynb"
    with pytest.raises(P.ParameterError, match="unknown parameter EPOCH of 01_set_rigl; did you mean EPOCHS"):
        snb.nb.params.check_notebook(nb, {"EPOCH": 5})
    snb.nb.params.check_notebook(nb, {"EPOCHS": 5, "PROFILE": "smoke", "THREADS": 2})


def test_settings_takes_each_parameter_once_from_the_namespace():
    import sparsenb as snb

    ns = {"PROFILE": "smoke", "SEEDS": None, "WARMUP_EPOCHS": 3, "OUT_DIR": "/tmp/x", "PROGRESS": False,
          "torch": object()}
    cfg = snb.nb.settings("13_alacpd", ns)
    assert cfg.WARMUP_EPOCHS == 3                       # given: replaces the profile's value
    assert cfg.SEEDS == snb.nb.catalog.resolve("13_alacpd", "smoke").SEEDS   # None: the profile's value
    assert "OUT_DIR" not in cfg and "torch" not in cfg
    with pytest.raises(ValueError, match="SEEDS must be an int"):
        snb.nb.settings("13_alacpd", dict(ns, SEEDS="two"))
    with pytest.raises(ValueError, match="PROFILE"):
        snb.nb.settings("13_alacpd", {"SEEDS": 1})
