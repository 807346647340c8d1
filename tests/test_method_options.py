"""Methods declare their options (Method.options) and build themselves from a config (methods.build)."""
import inspect

import pytest

from sparsenb import methods
from sparsenb.methods import METHODS, Method, Option, build, get, register


def test_options_come_from_the_signature_and_the_docstring():
    opts = METHODS["rigl"].options()
    assert isinstance(opts["update_every"], Option)
    assert (opts["update_every"].default, opts["drop_fraction"].default, opts["t_end"].default) == (100, 0.3, 0.75)
    assert "delta_t" in opts["update_every"].help  # the paper's name is noted
    assert "alpha" in opts["drop_fraction"].help
    # inherited through **kwargs from Method, with the base class's help
    assert opts["sparsity"].default == 0.9 and "pruned" in opts["sparsity"].help
    assert {"delta_t", "alpha", "kwargs"}.isdisjoint(opts)


def test_options_of_a_method_with_a_required_option():
    opts = METHODS["fixed"].options()
    assert opts["masks"].default is inspect.Parameter.empty


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_registered_option_is_documented(name):
    missing = [o for o, opt in METHODS[name].options().items() if not opt.help]
    assert not missing, f"{name}: options without help in an Args: section: {missing}"


@pytest.mark.parametrize("name", sorted(METHODS))
def test_settings_map_to_real_options(name):
    cls = METHODS[name]
    declared = {}
    for klass in cls.__mro__:
        declared.update(vars(klass).get("SETTINGS", {}))
    assert set(declared.values()) <= set(cls.options()), declared
    assert all(key.isupper() for key in declared)


def test_one_knob_one_name_across_methods():
    for name in ("set", "rigl", "dsn", "ctre_sim", "ctre_seq", "edst", "slak"):
        opts = METHODS[name].options()
        assert "drop_fraction" in opts, name
        assert {"zeta", "alpha", "prune_rate", "delta_t"}.isdisjoint(opts), name
    for name in ("rigl", "dsn", "edst", "slak"):
        assert "update_every" in METHODS[name].options(), name


def test_build_reads_upper_case_settings_through_the_method_map():
    cfg = {"DELTA_T": 50, "ALPHA": 0.2, "T_END": 0.5, "ZETA": 0.4, "EPOCHS": 7, "LR": 0.1, "INIT": "glorot",
           "DISTRIBUTION": "er", "sparsity": 0.8, "seed": 3}
    r = build("rigl", cfg)
    assert (r.update_every, r.drop_fraction, r.t_end, r.distribution, r.sparsity, r.seed) == (50, 0.2, 0.5, "er", 0.8, 3)
    assert r.init == "dense"  # the notebook's INIT (dense weight init) is not the method's init option
    s = build("set", cfg)
    assert (s.drop_fraction, s.distribution) == (0.4, "er")  # SET reads ZETA, not ALPHA
    assert build("slak", {"PRUNE_RATE": 0.3, "UPDATE_EVERY": 7, "SLAK_INIT": "random"}).drop_fraction == 0.3


def test_build_equals_get_with_the_same_options():
    a = build("rigl", {"DELTA_T": 50, "ALPHA": 0.2, "sparsity": 0.8, "seed": 1})
    b = get("rigl", update_every=50, drop_fraction=0.2, sparsity=0.8, seed=1)
    assert vars(a).keys() == vars(b).keys()
    assert all(vars(a)[k] == vars(b)[k] for k in vars(a) if k != "generator")


def test_lower_case_option_wins_over_a_setting_and_names_add_settings():
    assert build("rigl", {"ALPHA": 0.2, "drop_fraction": 0.1}).drop_fraction == 0.1
    r = build("rigl", {"ZETA": 0.25, "ALPHA": 0.2}, names={"ZETA": "drop_fraction"})
    assert r.drop_fraction == 0.25  # names replace the method's own setting for that option


def test_build_unknown_option_names_the_method_and_its_options():
    with pytest.raises(ValueError, match=r"method 'set' has no option 'zeta'; its options are \[.*'drop_fraction'"):
        build("set", {"zeta": 0.3})
    with pytest.raises(ValueError, match=r"method 'rigl' has no option 'delta_t'.*'update_every'"):
        build("rigl", {"delta_t": 10})
    with pytest.raises(ValueError, match=r"method 'set' has no option 'update_every' \(named for setting 'DELTA_T'\)"):
        build("set", {}, names={"DELTA_T": "update_every"})
    with pytest.raises(ValueError, match="unknown method 'magic'"):
        build("magic", {})


def test_build_refuses_two_settings_for_one_option():
    with pytest.raises(ValueError, match="'DROP_FRACTION' and 'ALPHA' both give option 'drop_fraction'|"
                                         "'ALPHA' and 'DROP_FRACTION' both give option 'drop_fraction'"):
        build("rigl", {"ALPHA": 0.2, "DROP_FRACTION": 0.3}, names={"DROP_FRACTION": "drop_fraction", "ALPHA": "drop_fraction"})


def test_a_new_method_gets_options_and_build_for_free():
    @register("_test_opts")
    class Tmp(Method):
        """A test method.

        Args:
            knob: a knob,
                documented over two lines.
            **kwargs: of :class:`Method`.
        """

        SETTINGS = {"KNOB": "knob"}

        def __init__(self, knob: int = 4, **kwargs):
            super().__init__(**kwargs)
            self.knob = knob

    try:
        opts = Tmp.options()
        assert opts["knob"] == Option("knob", 4, "a knob, documented over two lines.")
        assert build("_test_opts", {"KNOB": 9, "EPOCHS": 3}).knob == 9
        assert Tmp.setting_names()["KNOB"] == "knob"
    finally:
        METHODS.pop("_test_opts", None)


# ---------------------------------------------------------- costs and schedule
def test_methods_answer_their_schedule_and_snapshots():
    m = get("rigl")
    assert m.training_epochs(12) == 12 and m.lr_schedule() is None and m.snapshots() == [None]
    assert not METHODS["rigl"].yields_ensemble
    e = get("edst", tickets=2, explore_epochs=3, refine_epochs=4)
    assert e.training_epochs(99) == 11 and METHODS["edst"].yields_ensemble
    lr = e.lr_schedule()
    assert [lr(ep) for ep in range(11)] == [1, 1, 1, 0.1, 0.1, 0.01, 0.01, 0.1, 0.1, 0.01, 0.01]
    assert e.snapshots() == []  # no ticket before training
    assert get("dense").dense_gradient_steps() == 0 and get("set").dense_gradient_steps() == 0


def test_rigl_counts_dense_gradient_steps_from_its_updates():
    r = get("rigl")
    r.events = [{"step": 100, "layer": "a"}, {"step": 100, "layer": "b"}, {"step": 200, "layer": "a"}]
    assert r.dense_gradient_steps() == 2


def test_module_exports():
    assert methods.build is build and methods.Option is Option
