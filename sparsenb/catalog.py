"""The notebooks sparsenb ships: their papers, claims, profiles and gallery rows.

Profiles live here, not in the notebooks, so that ``sparsenb list`` can show
them without running anything and the notebook's ``parameters`` cell stays
literals only. A notebook resolves its settings with::

    cfg = snb.catalog.resolve("01_set_rigl", PROFILE, overrides={"EPOCHS": EPOCHS, ...})

Profiles: ``smoke`` (seconds, CI), ``cpu`` (minutes, offline, the committed
record) and ``paper`` (the paper's setting; full data, meant for a GPU).
An override that is not ``None`` replaces the profile's value, after the
check of :mod:`sparsenb.params` (name, type, list shape), so a bad value stops
the settings cell with one line instead of failing cells later.

``Notebook.minutes`` holds estimates for the profiles without a committed
record; the ``cpu`` profile's run time is measured by its record
(:func:`sparsenb.gallery.run_time_text`), the one source for README,
``sparsenb list`` and the notebook's title cell.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from . import params

__all__ = ["Notebook", "GalleryRow", "NOTEBOOKS", "INTERACTIVE", "resolve", "Config"]


@dataclass
class GalleryRow:
    """One README gallery row; ``ours(metrics)`` formats our number from results.json.

    The row finds its claim in results.json by ``claim_id``, a stable name that stays the same
    when the claim's text names another dataset or setting (the notebook passes it as
    ``claim(..., id=claim_id)``); records written before claims had ids are matched by text.
    """

    method: str
    claim: str  # the claim's text in the cpu profile (shown in the gallery)
    ours: Callable[[dict], str]
    paper_value: str
    claim_id: str = ""  # the ``id=`` the notebook passes to ``claim(...)``; records without ids match ``claim``


@dataclass
class Notebook:
    stem: str
    title: str
    paper: str
    claim: str
    profiles: dict[str, dict[str, Any]]
    minutes: dict[str, float]  # estimates for the profiles without a committed record (cpu: measured, see gallery)
    gallery: list[GalleryRow] = field(default_factory=list)
    summary: str = ""  # what it reproduces, one line for the README's table of notebooks


def _acc(m: dict, key: str) -> str:
    mean, std = m.get(f"{key}/test_acc_mean"), m.get(f"{key}/test_acc_std")
    if mean is None:
        return "—"
    return f"{100 * mean:.2f} ± {100 * (std or 0):.2f} %"


def _edst_vs_dense(m: dict, p: str) -> str:
    """08_free_tickets gallery cell: EDST ensemble vs single dense (mean ± std) on dataset prefix ``p``."""
    return ("acc {} vs {} %, NLL {} vs {}, ECE {} vs {} at {:.2f}x dense "
            "training FLOPs (mean ± std over {} seeds)").format(
        *(f"{m.get(p + a + k, float('nan')):{f}} ± {m.get(p + a + k + '_std', float('nan')):{f}}"
          for k, f in (("acc", ".2f"), ("nll", ".3f"), ("ece", ".3f"))
          for a in ("edst_ensemble/", "single_dense/")),
        m.get(p + "edst_ensemble/train_flops", float("nan")), m.get("seeds"))


# INIT: the dense-scale init of the papers' code (Keras/TensorFlow glorot_uniform, zero bias);
# SPARSE_INITS: weight-init arms of every sparse method (sparsenb.init): "dense" = the papers' init as is
_SET_RIGL_COMMON = dict(MODEL="lenet300", DISTRIBUTION="erk", OPTIMIZER="sgd", MOMENTUM=0.9,
                        WEIGHT_DECAY=5e-4, ZETA=0.3, DELTA_T=100, ALPHA=0.3, T_END=0.75, INIT="glorot")

_ALACPD_COMMON = dict(WINDOW=6, HORIZON=4, HIGHWAY=6, UNITS=20, SKIPS=[3, 5, 7], LR=1e-3, WARMUP_FRACTION=0.1,
                      WARMUP_MIN=10, MARGIN=5, ON_PAR_F1=0.05, THREADS=1)
_ALACPD_CLAIMS = ("ALACPD ranks first on average covering among the compared detectors (default settings)",
                  "ALACPD is on par with the best detector on F1 (mean F1 within 0.05, default settings)")

NOTEBOOKS: dict[str, Notebook] = {
    "01_set_rigl": Notebook(
        stem="01_set_rigl",
        summary="SET and RigL vs static sparse and dense",
        title="SET and RigL on LeNet-300-100",
        paper=("Mocanu et al. 2018, Nat. Commun. 9:2383 (SET); "
               "Evci et al. 2020, ICML, 'Rigging the Lottery' (RigL)"),
        claim="Dynamic sparse training (SET, RigL) beats a static random mask and stays close to dense",
        profiles={
            "smoke": dict(_SET_RIGL_COMMON, DATASET="digits", SPARSITIES=[0.9], SEEDS=1, EPOCHS=6,
                          BATCH_SIZE=64, LR=0.1, SCHEDULE="cosine", DELTA_T=5, SPARSE_INITS=["dense", "sparse"]),
            "cpu": dict(_SET_RIGL_COMMON, DATASET="mnist5k", SPARSITIES=[0.9, 0.95, 0.98], SEEDS=3,
                        EPOCHS=30, BATCH_SIZE=100, LR=0.05, SCHEDULE="cosine", SPARSE_INITS=["dense", "sparse"]),
            "paper": dict(_SET_RIGL_COMMON, DATASET="mnist", SPARSITIES=[0.9, 0.95, 0.98], SEEDS=3,
                          EPOCHS=100, BATCH_SIZE=100, LR=0.1, SCHEDULE="step", SPARSE_INITS=["dense"]),
        },
        minutes={"smoke": 0.3, "paper": 60},
        gallery=[
            GalleryRow("SET (LeNet-300-100, 98% sparse)", "SET beats static sparse at every sparsity",
                       lambda m: _acc(m, "set/0.98"), "97.74 % (full MNIST)",
                       claim_id="set_beats_static"),
            GalleryRow("RigL (LeNet-300-100, 98% sparse)", "RigL >= SET at 98% sparsity",
                       lambda m: _acc(m, "rigl/0.98"), "not reported for this net",
                       claim_id="rigl_ge_set_at_max_sparsity"),
            GalleryRow("SET / RigL at 90% vs dense", "Sparse (best of SET, RigL) within 0.5 points of dense at 90% sparsity",
                       lambda m: f"{_acc(m, 'set/0.9')} / {_acc(m, 'rigl/0.9')} vs {_acc(m, 'dense/0.0')}",
                       "98.39 % vs 98.69 % (SET vs dense)",
                       claim_id="sparse_near_dense_at_min_sparsity"),
            GalleryRow("SET / RigL at 90% vs dense, sparsity-aware init",
                       "Sparse (best of SET, RigL) within 0.5 points of dense at 90% sparsity (sparsity-aware init 'sparse')",
                       lambda m: f"{_acc(m, 'set+sparse_init/0.9')} / {_acc(m, 'rigl+sparse_init/0.9')} vs {_acc(m, 'dense/0.0')}",
                       "98.39 % vs 98.69 % (SET vs dense; dense-scale init)",
                       claim_id="sparse_near_dense_at_min_sparsity+sparse_init"),
        ],
    ),
    "02_pruning_at_init": Notebook(
        stem="02_pruning_at_init",
        summary="SNIP / GraSP / SynFlow vs magnitude and random; layer collapse",
        title="Pruning at initialisation: SNIP, GraSP, SynFlow vs random and magnitude",
        paper=("Lee et al. 2019, ICLR (SNIP); Wang et al. 2020, ICLR (GraSP); Tanaka et al. 2020, NeurIPS (SynFlow); "
               "Frankle et al. 2021, ICLR, 'Pruning Neural Networks at Initialization: Why are We Missing the Mark?'; "
               "Su et al. 2020, NeurIPS, 'Sanity-Checking Pruning Methods: Random Tickets can Win the Jackpot'"),
        claim=("SynFlow avoids layer collapse longest; at moderate sparsity the pruning-at-init criteria are "
               "barely better than a random mask"),
        profiles={
            "smoke": dict(DATASET="digits", MODELS=["lenet300"], SPARSITIES={"lenet300": [0.9, 0.999]},
                          COLLAPSE_SPARSITIES=[0.9, 0.999], SEEDS=1, EPOCHS={"lenet300": 2}, BATCH_SIZE=32,
                          LR=5e-3, OPTIMIZER="adam", MOMENTUM=0.9, WEIGHT_DECAY=0.0, SCHEDULE="cosine", EVAL="end",
                          SCOPE="global", PRUNE_BATCHES=1, SYNFLOW_ITERATIONS=100, GRASP_TEMPERATURE=200.0, THREADS=1),
            "cpu": dict(DATASET="mnist5k", MODELS=["lenet300", "lenet5"],
                        SPARSITIES={"lenet300": [0.5, 0.9, 0.98, 0.99, 0.995, 0.999], "lenet5": [0.9, 0.99, 0.999]},
                        COLLAPSE_SPARSITIES=[0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9998,
                                             0.9999],
                        SEEDS=2, EPOCHS={"lenet300": 8, "lenet5": 2}, BATCH_SIZE=100, LR=1e-3, OPTIMIZER="adam",
                        MOMENTUM=0.9, WEIGHT_DECAY=0.0, SCHEDULE="cosine", EVAL="end", SCOPE="global",
                        PRUNE_BATCHES=1, SYNFLOW_ITERATIONS=100, GRASP_TEMPERATURE=200.0, THREADS=1),
            "paper": dict(DATASET="mnist", MODELS=["lenet300", "lenet5"],
                          SPARSITIES={m: [0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999] for m in ("lenet300", "lenet5")},
                          COLLAPSE_SPARSITIES=[0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9998,
                                               0.9999],
                          SEEDS=3, EPOCHS={"lenet300": 40, "lenet5": 40}, BATCH_SIZE=100, LR=0.1, OPTIMIZER="sgd",
                          MOMENTUM=0.9, WEIGHT_DECAY=0.0, SCHEDULE="step", EVAL="epoch", SCOPE="global",
                          PRUNE_BATCHES=1, SYNFLOW_ITERATIONS=100, GRASP_TEMPERATURE=200.0, THREADS=0),
        },
        minutes={"smoke": 0.5, "paper": 240},
        gallery=[
            GalleryRow("SynFlow vs SNIP / GraSP / magnitude / random: layer collapse (LeNet-300-100, LeNet-5)",
                       "SynFlow reaches the highest sparsity before collapse",
                       lambda m: "; ".join(
                           f"{name}: " + ", ".join(f"{c} {m.get(f'{key}/{c}/max_sparsity_before_collapse')}"
                                                   for c in ("synflow", "snip", "grasp", "magnitude", "random_erk"))
                           for key, name in (("lenet300", "LeNet-300-100"), ("lenet5", "LeNet-5"))),
                       "SynFlow reaches maximal compression without collapse (VGG/ResNet, CIFAR)",
                       claim_id="synflow_latest_collapse"),
            GalleryRow("Best criterion vs random ERK at 90% sparsity",
                       "At moderate sparsity (90%) the criteria beat random (ERK) by less than 1 point",
                       lambda m: " / ".join(
                           f"{100 * m[k]:+.2f} points" if k in m else "—"
                           for k in ("lenet300/gap_best_criterion_vs_random_erk_at_0.9",
                                     "lenet5/gap_best_criterion_vs_random_erk_at_0.9")) + " (LeNet-300-100 / LeNet-5)",
                       "random masks with the same layer densities about match the criteria (VGG/ResNet)",
                       claim_id="criteria_near_random_at_0.9"),
        ],
    ),
    "03_lottery_tickets": Notebook(
        stem="03_lottery_tickets",
        summary="lottery tickets by iterative magnitude pruning with rewinding",
        title="Lottery tickets: iterative magnitude pruning with rewinding on LeNet-300-100",
        paper="Frankle, Carbin 2019, ICLR, 'The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks'",
        claim=("Winning tickets found by IMP with rewinding to init match the dense network down to a few % of the "
               "weights; random reinitialisation and random masks fall behind"),
        profiles={
            "smoke": dict(DATASET="digits", MODEL="lenet300", ROUNDS=5, RATE=0.5, OUTPUT_RATE=0.25, REWIND="init",
                          SEEDS=2, EPOCHS=2, BATCH_SIZE=60, LR=1.2e-3, OPTIMIZER="adam", SCHEDULE="constant",
                          THREADS=1),
            "cpu": dict(DATASET="mnist5k", MODEL="lenet300", ROUNDS=18, RATE=0.2, OUTPUT_RATE=0.1, REWIND="init",
                        SEEDS=3, EPOCHS=8, BATCH_SIZE=60, LR=1.2e-3, OPTIMIZER="adam", SCHEDULE="constant",
                        THREADS=1),
            "paper": dict(DATASET="mnist", MODEL="lenet300", ROUNDS=20, RATE=0.2, OUTPUT_RATE=0.1, REWIND="init",
                          SEEDS=5, EPOCHS=50, BATCH_SIZE=60, LR=1.2e-3, OPTIMIZER="adam", SCHEDULE="constant",
                          THREADS=0),
        },
        minutes={"smoke": 0.5, "paper": 300},
        gallery=[
            GalleryRow("Winning tickets, LeNet-300-100 (IMP, rewind to init)",
                       "Tickets with 7-21% of weights match or beat the dense network",
                       lambda m: (f"{m.get('ticket_min_in_7_21_pct_remaining', float('nan')) * 100:.2f} % (worst round in "
                                  f"range) vs dense {_acc(m, 'dense')}"),
                       "tickets under 10-20 % of the weights match dense, larger ones beat it (full MNIST)",
                       claim_id="tickets_match_dense"),
            GalleryRow("Random reinitialisation of the ticket (LeNet-300-100)",
                       "Random reinitialization falls behind at high sparsity",
                       lambda m: (f"{100 * m.get('reinit_minus_ticket_max_at_5pct', float('nan')):+.2f} points "
                                  f"(reinit - ticket, best case at <= 5 % remaining)"),
                       "reinitialised tickets learn slower and lose accuracy",
                       claim_id="reinit_falls_behind"),
        ],
    ),
    "04_random_search": Notebook(
        stem="04_random_search",
        summary="random search as a sparse-architecture baseline",
        title="Random search as a sparse architecture baseline",
        paper=("Farahani 2024, 'Random Search as a Baseline for Sparse Neural Network Architecture Search', "
               "arXiv:2403.08265"),
        claim=("The best of K random node configurations (by validation loss at initialisation) neither trains "
               "to a better accuracy nor converges faster than one random configuration at the same sparsity"),
        profiles={
            "smoke": dict(DATASET="digits", N_VAL=300, HIDDEN=[64, 64], SPARSITIES=[0.75], CANDIDATES=20, SEEDS=3,
                          EPOCHS=5, BATCH_SIZE=64, LR=0.1, MOMENTUM=0.9, WEIGHT_DECAY=5e-4, SCHEDULE="cosine",
                          CONV_FRACTION=0.99, ALPHA=0.05),
            "cpu": dict(DATASET="mnist5k", N_VAL=1000, HIDDEN=[256, 256], SPARSITIES=[0.5, 0.75, 0.9],
                        CANDIDATES=100, SEEDS=8, EPOCHS=20, BATCH_SIZE=100, LR=0.05, MOMENTUM=0.9,
                        WEIGHT_DECAY=5e-4, SCHEDULE="cosine", CONV_FRACTION=0.99, ALPHA=0.05),
            "paper": dict(DATASET="mnist", N_VAL=10000, HIDDEN=[1024, 1024], SPARSITIES=[0.5, 0.75, 0.9, 0.95],
                          CANDIDATES=1000, SEEDS=20, EPOCHS=50, BATCH_SIZE=100, LR=0.05, MOMENTUM=0.9,
                          WEIGHT_DECAY=5e-4, SCHEDULE="cosine", CONV_FRACTION=0.99, ALPHA=0.05),
        },
        minutes={"smoke": 0.25, "paper": 240},
        gallery=[
            GalleryRow("Random search, node space (MLP 256-256, 75% nodes removed)",
                       "Random search does not reach a better final test accuracy than a random configuration "
                       "at the same sparsity",
                       lambda m: (f"search {_acc(m, 'search/0.75')} vs random {_acc(m, 'random/0.75')} "
                                  f"(one-sided Welch p = {m.get('0.75/acc_welch_p_greater', float('nan')):.2f})"),
                       "not better (abstract; its numbers not retrieved)",
                       claim_id="search_not_more_accurate"),
            GalleryRow("Random search, node space: convergence",
                       "Random search does not converge faster than a random configuration at the same sparsity",
                       lambda m: (f"epochs to 99% of final acc., 75% removed: search "
                                  f"{m.get('search/0.75/epochs_to_conv_mean', float('nan')):.1f} vs random "
                                  f"{m.get('random/0.75/epochs_to_conv_mean', float('nan')):.1f}"),
                       "not faster",
                       claim_id="search_not_faster"),
        ],
    ),
    "05_pruning_fraction": Notebook(
        stem="05_pruning_fraction",
        summary="pruning fraction vs generalization (theory on signal-noise data)",
        title="Pruning fraction vs generalization (two-layer network, signal-noise data)",
        paper=("Yang, Liang, Guo, Wu, Wang 2023, ICLR, 'Theoretical Characterization of How Neural Network "
               "Pruning Affects its Generalization', arXiv:2301.00335"),
        claim=("Random pruning at initialisation improves generalization up to a threshold fraction; beyond it the "
               "network still fits the training set by memorizing noise but tests at chance"),
        profiles={
            "smoke": dict(D=400, N=20, M=10, MU_NORM=7.4, SIGMA_P=1.0, SIGMA_0=0.01, Q=3.0, ETA=0.5, STEPS=300,
                          N_TEST=500, P_GRID=[0.0, 0.5, 0.9, 0.98], SEEDS=2, DYNAMICS_P=[0.0, 0.9, 0.98],
                          TRAIN_LOSS_TOL=0.01, LOW_ERR=0.1, NEAR_CHANCE=0.4, ALPHA=0.05,
                          MLP_DATASET="digits", MLP_HIDDEN=128, MLP_P=[0.0, 0.5, 0.99], MLP_SEEDS=1, MLP_EPOCHS=4,
                          MLP_LR=0.1, MLP_BATCH_SIZE=64),
            "cpu": dict(D=2000, N=50, M=20, MU_NORM=12.0, SIGMA_P=1.0, SIGMA_0=0.01, Q=3.0, ETA=0.5, STEPS=1000,
                        N_TEST=2000, P_GRID=[0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.98, 0.99], SEEDS=8,
                        DYNAMICS_P=[0.2, 0.9, 0.99], TRAIN_LOSS_TOL=0.01, LOW_ERR=0.1, NEAR_CHANCE=0.4, ALPHA=0.05,
                        MLP_DATASET="mnist5k", MLP_HIDDEN=1024, MLP_P=[0.0, 0.5, 0.8, 0.9, 0.95, 0.99],
                        MLP_SEEDS=3, MLP_EPOCHS=15, MLP_LR=0.05, MLP_BATCH_SIZE=100),
            "paper": dict(D=2000, N=50, M=20, MU_NORM=12.0, SIGMA_P=1.0, SIGMA_0=0.01, Q=3.0, ETA=0.5, STEPS=5000,
                          N_TEST=10000, P_GRID=[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95,
                                                0.97, 0.98, 0.99], SEEDS=20,
                          DYNAMICS_P=[0.2, 0.9, 0.99], TRAIN_LOSS_TOL=0.01, LOW_ERR=0.1, NEAR_CHANCE=0.4, ALPHA=0.05,
                          MLP_DATASET="mnist", MLP_HIDDEN=1024, MLP_P=[0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.98, 0.99],
                          MLP_SEEDS=5, MLP_EPOCHS=50, MLP_LR=0.05, MLP_BATCH_SIZE=100),
        },
        minutes={"smoke": 0.3, "paper": 120},
        gallery=[
            GalleryRow("Random pruning at init, 2-layer net (signal-noise data)",
                       "Below a threshold, training loss goes to 0 and test error is low and falls as p grows",
                       lambda m: (f"test error {100 * m.get('p0.0/test_err_mean', float('nan')):.1f} % at p = 0 -> "
                                  f"{100 * m.get('best_p_test_err_mean', float('nan')):.1f} % at p = "
                                  f"{m.get('best_p', float('nan')):g}"),
                       "error bound improves with p below the threshold (theory)",
                       claim_id="low_error_below_threshold"),
            GalleryRow("Random pruning at init, 2-layer net: large p",
                       "At a large p, training loss still goes to 0 while test error is near 50%",
                       lambda m: (f"p = {m.get('p_max', float('nan')):g}: train loss "
                                  f"{m.get('p_max_train_loss_mean', float('nan')):.1e}, test error "
                                  f"{100 * m.get('p_max_test_err_mean', float('nan')):.1f} %"),
                       "~50 % test error (theory)",
                       claim_id="chance_error_at_large_p"),
        ],
    ),
    "06_truly_sparse": Notebook(
        stem="06_truly_sparse",
        summary="truly sparse (CSR) SET, All-ReLU, importance pruning, a 1,000,000-neuron MLP on 2 CPU cores (profile `scale`)",
        title="Truly sparse MLPs: SET without masks, All-ReLU, importance pruning, a million neurons on a CPU",
        paper=("Curci, Mocanu, Pechenizkiy 2021, 'Truly Sparse Neural Networks at Scale', arXiv:2102.01732; "
               "Mocanu et al. 2018, Nat. Commun. 9:2383 (SET)"),
        claim=("Sparse layers that store only their nonzeros train SET networks as well as masked dense layers, "
               "at a cost proportional to nnz, which makes MLPs with 1,000,000 hidden neurons trainable on a CPU"),
        profiles={
            "smoke": dict(DATASET="digits", SECTIONS=["scaling", "crossover", "set", "activation", "pruning", "scale"],
                          CROSS_WIDTHS=[64, 128], CROSS_DENSITIES=[0.5, 0.1], CROSS_ROUNDS=1, CROSS_STEPS=1,
                          SCALE_WIDTHS=[256, 512, 1024], SCALE_EPSILON=4, DENSE_CAP=512, SCALE_STEPS=1, SCALE_ROUNDS=1,
                          HIDDEN=[128, 128], EPSILON=4, SEEDS=1, EPOCHS=4, HIDDEN_ACT=[128, 128, 128],
                          ACT_EPSILON=4, ACT_INITS=["he_uniform", "sparse_he"], DROPOUT=0.3, ALPHA=0.6, PRUNE_START=0,
                          PRUNE_EVERY=1,
                          PRUNE_PERCENTILE=20.0, ZETA=0.3, BATCH_SIZE=64, LR=0.1, MOMENTUM=0.9, WEIGHT_DECAY=2e-4,
                          SCHEDULE="cosine", BIG_HIDDEN=[2000, 2000], BIG_EPSILON=1, BIG_EPOCHS=1, BIG_LR=0.05,
                          BIG_INIT="he_sparse", THREADS=1),
            "cpu": dict(DATASET="mnist5k", SECTIONS=["scaling", "crossover", "set", "activation", "pruning", "scale"],
                        CROSS_WIDTHS=[256, 1024, 4096], CROSS_DENSITIES=[0.3, 0.1, 0.03, 0.01], CROSS_ROUNDS=3,
                        CROSS_STEPS=2,
                        SCALE_WIDTHS=[1000, 2000, 4000, 8000, 16000, 32000, 64000], SCALE_EPSILON=10, DENSE_CAP=8000,
                        SCALE_STEPS=2, SCALE_ROUNDS=3,
                        HIDDEN=[1000, 1000], EPSILON=8, SEEDS=3, EPOCHS=20, HIDDEN_ACT=[1000, 1000, 1000],
                        ACT_EPSILON=8, ACT_INITS=["he_uniform", "sparse_he"], DROPOUT=0.3, ALPHA=0.6, PRUNE_START=4,
                        PRUNE_EVERY=3,
                        PRUNE_PERCENTILE=20.0, ZETA=0.3, BATCH_SIZE=128, LR=0.05, MOMENTUM=0.9, WEIGHT_DECAY=2e-4,
                        SCHEDULE="cosine", BIG_HIDDEN=[20000, 20000], BIG_EPSILON=1, BIG_EPOCHS=1, BIG_LR=0.05,
                        BIG_INIT="he_sparse", THREADS=1),
            "scale": dict(DATASET="mnist5k", SECTIONS=["scale"],
                          SCALE_WIDTHS=[], SCALE_EPSILON=10, DENSE_CAP=0, SCALE_STEPS=1, SCALE_ROUNDS=1,
                          HIDDEN=[1000, 1000], EPSILON=8, SEEDS=1, EPOCHS=1, HIDDEN_ACT=[1000, 1000, 1000],
                          ACT_EPSILON=8, ACT_INIT="he_uniform", DROPOUT=0.3, ALPHA=0.6, PRUNE_START=4, PRUNE_EVERY=3,
                          PRUNE_PERCENTILE=20.0, ZETA=0.3, BATCH_SIZE=128, LR=0.05, MOMENTUM=0.9, WEIGHT_DECAY=2e-4,
                          SCHEDULE="cosine", BIG_HIDDEN=[500000, 500000], BIG_EPSILON=1, BIG_EPOCHS=1, BIG_LR=0.05,
                          BIG_INIT="he_sparse", THREADS=1),
            "paper": dict(DATASET="mnist", SECTIONS=["scaling", "crossover", "set", "activation", "pruning", "scale"],
                          CROSS_WIDTHS=[1024, 4096, 16384], CROSS_DENSITIES=[0.3, 0.1, 0.03, 0.01, 0.003, 0.001],
                          CROSS_ROUNDS=5, CROSS_STEPS=2,
                          SCALE_WIDTHS=[1000, 4000, 16000, 64000, 256000], SCALE_EPSILON=20, DENSE_CAP=16000,
                          SCALE_STEPS=5, SCALE_ROUNDS=5,
                          HIDDEN=[1000, 1000, 1000], EPSILON=20, SEEDS=3, EPOCHS=500, HIDDEN_ACT=[1000, 1000, 1000],
                          ACT_EPSILON=20, ACT_INITS=["he_uniform"], DROPOUT=0.3, ALPHA=0.6, PRUNE_START=200,
                          PRUNE_EVERY=10, PRUNE_PERCENTILE=20.0, ZETA=0.3, BATCH_SIZE=128, LR=0.01, MOMENTUM=0.9,
                          WEIGHT_DECAY=2e-4, SCHEDULE="constant", BIG_HIDDEN=[500000, 500000], BIG_EPSILON=1,
                          BIG_EPOCHS=20, BIG_LR=0.01, BIG_INIT="he_sparse", THREADS=0),
        },
        minutes={"smoke": 0.3, "scale": 8, "paper": 3000},
        gallery=[
            GalleryRow("Truly sparse SET vs masked SET (MLP 784-1000-1000-10, eps 8)",
                       "Truly sparse SET matches masked SET within 0.5 points",
                       lambda m: (f"truly sparse {_acc(m, 'set_truly_sparse')} vs masked {_acc(m, 'set_masked')}"),
                       "same algorithm; the paper reports only the truly sparse numbers",
                       claim_id="set"),
            GalleryRow("All-ReLU vs ReLU (truly sparse SET, 3 hidden layers)",
                       "All-ReLU improves accuracy over ReLU",
                       lambda m: f"All-ReLU {_acc(m, 'allrelu')} vs ReLU {_acc(m, 'relu')}",
                       "All-ReLU better on most data sets",
                       claim_id="activation"),
            GalleryRow("Importance pruning (truly sparse SET + All-ReLU)",
                       "Importance pruning removes a large fraction of neurons with little accuracy loss",
                       lambda m: (f"{100 * m.get('pruning/neurons_removed_frac_mean', float('nan')):.0f} % of hidden "
                                  f"neurons removed, {_acc(m, 'pruned')} vs {_acc(m, 'allrelu')}"),
                       "large neuron reductions with similar accuracy",
                       claim_id="pruning"),
            GalleryRow("All-ReLU vs ReLU, sparsity-aware init (He by kept fan-in)",
                       "All-ReLU improves accuracy over ReLU (sparsity-aware init 'sparse_he')",
                       lambda m: f"All-ReLU {_acc(m, 'allrelu+sparse_he_init')} vs ReLU {_acc(m, 'relu+sparse_he_init')}",
                       "All-ReLU better on most data sets (dense-scale He init)",
                       claim_id="activation+sparse_he_init"),
            GalleryRow("Importance pruning, sparsity-aware init (He by kept fan-in)",
                       "Importance pruning removes a large fraction of neurons with little accuracy loss "
                       "(sparsity-aware init 'sparse_he')",
                       lambda m: (f"{100 * m.get('pruning+sparse_he_init/neurons_removed_frac_mean', float('nan')):.0f} % "
                                  f"of hidden neurons removed, {_acc(m, 'pruned+sparse_he_init')} vs "
                                  f"{_acc(m, 'allrelu+sparse_he_init')}"),
                       "large neuron reductions with similar accuracy (dense-scale He init)",
                       claim_id="pruning+sparse_he_init"),
        ],
    ),
    "09_sup_tickets": Notebook(
        stem="09_sup_tickets",
        summary="Sup-tickets: superposing cheap tickets of SET / RigL into one",
        title="Sup-tickets: superposing cheap tickets of SET and RigL into one sparse network",
        paper=("Yin, Menkovski, Fang, Huang, Pei, Pechenizkiy, Mocanu, Liu 2022, UAI (PMLR 180), 'Superposing Many "
               "Tickets into One: A Performance Booster for Sparse Neural Network Training', arXiv:2205.15322"),
        claim=("With the same sparsity and the same number of epochs, the superposition of the cheap tickets of a "
               "short cyclic phase beats the base DST model and the last cheap ticket"),
        profiles={
            "smoke": dict(DATASET="digits", N_TRAIN=None, N_TEST=None, MODEL="resnet_small", WIDTH=4, BLOCKS=1,
                          METHODS=["set", "rigl"], SPARSITY=0.8, DISTRIBUTION="erk", SEEDS=1, EPOCHS=3,
                          CYCLE_EPOCHS=1, CYCLE_RATE=0.67, BATCH_SIZE=64, LR=0.1, MOMENTUM=0.9, WEIGHT_DECAY=5e-4,
                          SCHEDULE="step", AUGMENT=False, LR_MIN=0.001, LR_MAX=0.005, REEXPLORE=0.5,
                          PRUNE_SCOPE="global", CARRY="pruned", BN_UPDATE=True, ZETA=0.3, DELTA_T=5, ALPHA=0.5,
                          T_END=1.0, THREADS=1),
            "cpu": dict(DATASET="cifar10-jpeg", N_TRAIN=3000, N_TEST=4000, MODEL="resnet_small", WIDTH=8, BLOCKS=1,
                        METHODS=["set", "rigl"], SPARSITY=0.8, DISTRIBUTION="erk", SEEDS=2, EPOCHS=30,
                        CYCLE_EPOCHS=1, CYCLE_RATE=0.1, BATCH_SIZE=64, LR=0.1, MOMENTUM=0.9, WEIGHT_DECAY=5e-4,
                        SCHEDULE="step", AUGMENT=False, LR_MIN=0.001, LR_MAX=0.005, REEXPLORE=0.5,
                        PRUNE_SCOPE="global", CARRY="pruned", BN_UPDATE=True, ZETA=0.3, DELTA_T=24, ALPHA=0.5,
                        T_END=1.0, THREADS=1),
            "paper": dict(DATASET="cifar10-jpeg", N_TRAIN=None, N_TEST=None, MODEL="resnet_small", WIDTH=16, BLOCKS=5,
                          METHODS=["set", "rigl"], SPARSITY=0.95, DISTRIBUTION="erk", SEEDS=3, EPOCHS=250,
                          CYCLE_EPOCHS=8, CYCLE_RATE=0.1, BATCH_SIZE=128, LR=0.1, MOMENTUM=0.9, WEIGHT_DECAY=5e-4,
                          SCHEDULE="step", AUGMENT=True, LR_MIN=0.001, LR_MAX=0.005, REEXPLORE=0.5,
                          PRUNE_SCOPE="global", CARRY="pruned", BN_UPDATE=True, ZETA=0.3, DELTA_T=1000, ALPHA=0.5,
                          T_END=1.0, THREADS=0),
        },
        minutes={"smoke": 0.4, "paper": 150},
        gallery=[
            GalleryRow("Sup-tickets on SET (ResNet-8 width 8, 80% sparse, cifar10-jpeg 3k)",
                       "Sup-tickets (SET): the superposed ticket beats base SET and the last cheap ticket",
                       lambda m: (f"superposed {_acc(m, 'set/superposed')} vs base {_acc(m, 'set/base')} vs last "
                                  f"ticket {_acc(m, 'set/last_ticket')}"),
                       "consistent gains over the base DST at the same epochs (CIFAR-10/100, ImageNet)",
                       claim_id="set/sup_beats_base_and_last"),
            GalleryRow("Sup-tickets on RigL (ResNet-8 width 8, 80% sparse, cifar10-jpeg 3k)",
                       "Sup-tickets (RigL): the superposed ticket beats base RigL and the last cheap ticket",
                       lambda m: (f"superposed {_acc(m, 'rigl/superposed')} vs base {_acc(m, 'rigl/base')} vs last "
                                  f"ticket {_acc(m, 'rigl/last_ticket')}"),
                       "consistent gains over the base DST at the same epochs (CIFAR-10/100, ImageNet)",
                       claim_id="rigl/sup_beats_base_and_last"),
        ],
    ),
    "12_slak": Notebook(
        stem="12_slak",
        summary="SLaK: decomposed sparse large kernels vs dense 7x7 and dense large kernels; effective receptive field",
        title="SLaK: sparse large kernels (decomposed M x N + N x M kernels, widened and trained sparse)",
        paper=("Liu, Chen, Chen, Chen, Xiao, Wu, Kärkkäinen, Pechenizkiy, Mocanu, Wang 2023, ICLR, "
               "'More ConvNets in the 2020s: Scaling up Kernels Beyond 51x51 using Sparsity'"),
        claim=("Decomposing a large depthwise kernel into M x N + N x M (+ N x N) kernels and training a 1.3x "
               "wider network at 40% sparsity beats the dense 7x7 ConvNeXt at matched parameters and has a "
               "larger effective receptive field"),
        profiles={
            "smoke": dict(DATASET="digits", N_TRAIN=None, N_TEST=None, VARIANTS=["dense7", "dense_large", "slak"],
                          DIMS=[8, 16, 32], DEPTHS=[1, 1, 1], LARGE_KERNELS=[9, 5, 3], SMALL_KERNEL=5,
                          BASE_KERNEL=7, WIDTH=1.3, LAYER_SCALE=1e-6, SPARSITY=0.4, SLAK_INIT="snip",
                          UPDATE_EVERY=5, PRUNE_RATE=0.5, SEEDS=1, EPOCHS=2, BATCH_SIZE=64, LR=4e-3,
                          WEIGHT_DECAY=0.05, AUGMENT=0, FLIP=False, ERF_IMAGES=20, ERF_SIZE=32, THREADS=1),
            "cpu": dict(DATASET="cifar10-jpeg", N_TRAIN=5000, N_TEST=None, VARIANTS=["dense7", "dense_large", "slak"],
                        DIMS=[16, 32, 64], DEPTHS=[1, 1, 1], LARGE_KERNELS=[31, 15, 7], SMALL_KERNEL=5,
                        BASE_KERNEL=7, WIDTH=1.3, LAYER_SCALE=1e-6, SPARSITY=0.4, SLAK_INIT="snip",
                        UPDATE_EVERY=10, PRUNE_RATE=0.5, SEEDS=2, EPOCHS=50, BATCH_SIZE=128, LR=2e-3,
                        WEIGHT_DECAY=0.05, AUGMENT=4, FLIP=True, ERF_IMAGES=50, ERF_SIZE=128, THREADS=2),
            "paper": dict(DATASET="cifar10-jpeg", N_TRAIN=None, N_TEST=None,
                          VARIANTS=["dense7", "dense_large", "slak"], DIMS=[96, 192, 384], DEPTHS=[3, 3, 9],
                          LARGE_KERNELS=[31, 15, 7], SMALL_KERNEL=5, BASE_KERNEL=7, WIDTH=1.3, LAYER_SCALE=1e-6,
                          SPARSITY=0.4, SLAK_INIT="snip", UPDATE_EVERY=100, PRUNE_RATE=0.3, SEEDS=3, EPOCHS=300,
                          BATCH_SIZE=128, LR=4e-3, WEIGHT_DECAY=0.05, AUGMENT=4, FLIP=True, ERF_IMAGES=50,
                          ERF_SIZE=128, THREADS=0),
        },
        minutes={"smoke": 0.4, "paper": 600},
        gallery=[
            GalleryRow("SLaK vs dense 7x7 at matched parameters (small ConvNeXt, cifar10-jpeg)",
                       "SLaK beats the dense 7x7 at matched parameters",
                       lambda m: (f"SLaK {_acc(m, 'slak')} vs dense 7x7 {_acc(m, 'dense7')} "
                                  f"({m.get('slak/nonzero_params', 0):,} vs {m.get('dense7/nonzero_params', 0):,} "
                                  f"nonzero params)"),
                       "SLaK-T 82.5 % vs ConvNeXt-T 82.1 % (ImageNet-1K, 30M vs 29M params)",
                       claim_id="slak_beats_dense7"),
            GalleryRow("Effective receptive field, SLaK vs dense 7x7",
                       "SLaK's effective receptive field is larger than the dense 7x7's",
                       lambda m: ("r(20/30/50/99 %): SLaK " + "/".join(f"{m.get(f'slak/erf_r{t}_mean', float('nan')):.3f}"
                                                                       for t in ("0.2", "0.3", "0.5", "0.99"))
                                  + " vs dense 7x7 " + "/".join(f"{m.get(f'dense7/erf_r{t}_mean', float('nan')):.3f}"
                                                               for t in ("0.2", "0.3", "0.5", "0.99"))),
                       "larger high-contribution area ratio than ConvNeXt-T (ImageNet)",
                       claim_id="slak_larger_erf"),
        ],
    ),
    "08_free_tickets": Notebook(
        stem="08_free_tickets",
        summary="FreeTickets: EDST and DST ensembles vs dense ensembles; accuracy, NLL, ECE, training FLOPs",
        title="FreeTickets: EDST and DST ensembles vs dense models (accuracy, NLL, ECE, training FLOPs)",
        paper=("Liu, Chen, Atashgahi, Chen, Sokar, Mocanu, Pechenizkiy, Wang, Mocanu 2022, ICLR, 'Deep Ensembling "
               "with No Overhead for either Training or Testing: The All-Round Blessings of Dynamic Sparsity'"),
        claim=("An ensemble of sparse subnetworks taken from one dynamic sparse training run (EDST) beats a single "
               "dense model in accuracy and uncertainty for at most the training FLOPs of one dense model, and its "
               "tickets are diverse"),
        profiles={
            "smoke": dict(DATASETS=["digits", "cifar10-jpeg"], M=2, SPARSITY=0.8, DISTRIBUTION="erk",
                          DROP_FRACTION=0.5, LARGE_DROP=0.8, GROWTH="gradient", MOMENTUM=0.9, WEIGHT_DECAY=5e-4,
                          SEEDS=1, ECE_BINS=15, DIVERSITY_RATIO=0.5, THREADS=1,
                          SETTINGS={
                              "digits": dict(LABEL="digits, MLP 64", MODEL="mlp", MODEL_KW={"hidden": [64]},
                                             N_TRAIN=None, N_TEST=None, EPOCHS=2, EXPLORE_EPOCHS=1,
                                             REFINE_EPOCHS=1, DELTA_T=10, BATCH_SIZE=64, LR=0.1, AUGMENT=False),
                              "cifar10-jpeg": dict(LABEL="cifar10-jpeg subset, VGG-small", MODEL="vgg_small",
                                                   MODEL_KW={"stages": [8, 16]}, N_TRAIN=256, N_TEST=500,
                                                   EPOCHS=2, EXPLORE_EPOCHS=1, REFINE_EPOCHS=1, DELTA_T=4,
                                                   BATCH_SIZE=64, LR=0.1, AUGMENT=True)}),
            "cpu": dict(DATASETS=["mnist5k", "cifar10-jpeg"], M=3, SPARSITY=0.8, DISTRIBUTION="erk",
                        DROP_FRACTION=0.5, LARGE_DROP=0.8, GROWTH="gradient", MOMENTUM=0.9, WEIGHT_DECAY=5e-4,
                        SEEDS=3, ECE_BINS=15, DIVERSITY_RATIO=0.5, THREADS=1,
                        SETTINGS={
                            "mnist5k": dict(LABEL="mnist5k, LeNet-5", MODEL="lenet5", MODEL_KW={}, N_TRAIN=None,
                                            N_TEST=None, EPOCHS=10, EXPLORE_EPOCHS=6, REFINE_EPOCHS=4, DELTA_T=50,
                                            BATCH_SIZE=128, LR=0.1, AUGMENT=False),
                            "cifar10-jpeg": dict(LABEL="cifar10-jpeg, VGG-small", MODEL="vgg_small",
                                                 MODEL_KW={"stages": [16, 32, 64]}, N_TRAIN=5000, N_TEST=None,
                                                 EPOCHS=5, EXPLORE_EPOCHS=3, REFINE_EPOCHS=2, DELTA_T=50,
                                                 BATCH_SIZE=128, LR=0.1, AUGMENT=True)}),
            "paper": dict(DATASETS=["mnist", "cifar10-jpeg"], M=3, SPARSITY=0.8, DISTRIBUTION="erk",
                          DROP_FRACTION=0.5, LARGE_DROP=0.8, GROWTH="gradient", MOMENTUM=0.9, WEIGHT_DECAY=5e-4,
                          SEEDS=3, ECE_BINS=15, DIVERSITY_RATIO=0.5, THREADS=0,
                          SETTINGS={
                              "mnist": dict(LABEL="MNIST, LeNet-5", MODEL="lenet5", MODEL_KW={}, N_TRAIN=None,
                                            N_TEST=None, EPOCHS=250, EXPLORE_EPOCHS=150, REFINE_EPOCHS=100,
                                            DELTA_T=1000, BATCH_SIZE=128, LR=0.1, AUGMENT=False),
                              "cifar10-jpeg": dict(LABEL="cifar10-jpeg, ResNet-20", MODEL="resnet_small",
                                                   MODEL_KW={"blocks": 3, "width": 16}, N_TRAIN=None, N_TEST=None,
                                                   EPOCHS=250, EXPLORE_EPOCHS=150, REFINE_EPOCHS=100,
                                                   DELTA_T=1000, BATCH_SIZE=128, LR=0.1, AUGMENT=True)}),
        },
        minutes={"smoke": 0.4, "paper": 2400},
        gallery=[
            GalleryRow("EDST ensemble (M=3, 80% sparse) vs single dense, LeNet-5",
                       "EDST's ensemble beats a single dense model in accuracy and NLL/ECE for at most the training "
                       "FLOPs of one dense model (mnist5k, LeNet-5)",
                       lambda m: _edst_vs_dense(m, "mnist5k/"),
                       "WRN-28-10 on CIFAR-10: EDST better than dense in accuracy, NLL and ECE at < 1x training FLOPs",
                       claim_id="edst_beats_dense/mnist5k"),
            GalleryRow("EDST ensemble (M=3, 80% sparse) vs single dense, VGG-small",
                       "EDST's ensemble beats a single dense model in accuracy and NLL/ECE for at most the training "
                       "FLOPs of one dense model (cifar10-jpeg, VGG-small)",
                       lambda m: _edst_vs_dense(m, "cifar10-jpeg/"),
                       "WRN-28-10 on CIFAR-10: EDST better than dense in accuracy, NLL and ECE at < 1x training FLOPs",
                       claim_id="edst_beats_dense/cifar10-jpeg"),
            GalleryRow("EDST ticket diversity, VGG-small", "EDST tickets are diverse (cifar10-jpeg, VGG-small)",
                       lambda m, p="cifar10-jpeg/": "disagreement {} vs {} (DST ensemble); mask distance {} vs {}"
                       .format(
                           *(f"{m.get(p + a + k, float('nan')):.3f} ± {m.get(p + a + k + '_std', float('nan')):.3f}"
                             for k in ("disagreement", "mask_distance") for a in ("edst_ensemble/", "dst_ensemble/"))),
                       "tickets diverse, somewhat less than independent DST runs",
                       claim_id="tickets_diverse/cifar10-jpeg"),
        ],
    ),
    "11_ugts": Notebook(
        stem="11_ugts",
        summary="untrained GNN tickets (UGTs) vs edge-popup vs trained GCN / GAT, deep GCNs",
        title="Untrained GNN tickets (UGTs): sparse subnetworks of random GNNs vs trained dense GNNs",
        paper=("Huang, Chen, Fang, Menkovski, Zhao, Yin, Pei, Mocanu, Wang, Pechenizkiy, Liu 2022, LoG, 'You Can "
               "Have Better Graph Neural Networks by Not Training Weights at All: Finding Untrained GNNs Tickets'; "
               "Ramanujan et al. 2020, CVPR (edge-popup)"),
        claim=("Scores over frozen random weights, a global threshold and a gradual sparsity schedule find "
               "untrained sparse GNNs that match trained dense GNNs, beat edge-popup at high sparsity and "
               "degrade less with depth"),
        profiles={
            "smoke": dict(DATASET="cora", MODELS=["gcn", "gat"], SPARSITIES={"gcn": [0.5, 0.9], "gat": [0.9]},
                          SEEDS=1, HIDDEN=32, HEADS=1, EPOCHS={"gcn": 12, "gat": 12}, LR=0.01, RAMP=0.5,
                          WEIGHT_INIT="kaiming_uniform", SCORE_INIT="kaiming_uniform", SCORE_OPTIMIZER="adamw",
                          EDGEPOPUP_RANK="abs", DENSE_LR=0.01, DENSE_WEIGHT_DECAY=5e-4, DENSE_DROPOUT=0.5,
                          DEPTHS=[2, 4], DEEP_HIDDEN=16, DEEP_SPARSITIES=[0.04, 0.5], DEEP_LR=0.005, DEEP_EPOCHS=12,
                          DEEP_SEEDS=1, MATCH_POINTS=1.0, HIGH_SPARSITY=0.9, THREADS=1),
            "cpu": dict(DATASET="cora", MODELS=["gcn", "gat"],
                        SPARSITIES={"gcn": [0.1, 0.5, 0.9, 0.99], "gat": [0.5, 0.95]},
                        SEEDS=3, HIDDEN=256, HEADS=1, EPOCHS={"gcn": 400, "gat": 100}, LR=0.01, RAMP=0.5,
                        WEIGHT_INIT="kaiming_uniform", SCORE_INIT="kaiming_uniform", SCORE_OPTIMIZER="adamw",
                        EDGEPOPUP_RANK="abs", DENSE_LR=0.01, DENSE_WEIGHT_DECAY=5e-4, DENSE_DROPOUT=0.5,
                        DEPTHS=[2, 16, 32], DEEP_HIDDEN=64, DEEP_SPARSITIES=[0.04, 0.5, 0.9], DEEP_LR=0.005, DEEP_EPOCHS=100,
                        DEEP_SEEDS=2, MATCH_POINTS=1.0, HIGH_SPARSITY=0.9, THREADS=1),
            "paper": dict(DATASET="cora", MODELS=["gcn", "gat", "gin"],
                          SPARSITIES={m: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]
                                      for m in ("gcn", "gat", "gin")},
                          SEEDS=5, HIDDEN=256, HEADS=1, EPOCHS={"gcn": 400, "gat": 400, "gin": 400}, LR=0.01,
                          RAMP=0.5, WEIGHT_INIT="kaiming_uniform", SCORE_INIT="kaiming_uniform",
                          SCORE_OPTIMIZER="adamw", EDGEPOPUP_RANK="abs", DENSE_LR=0.01, DENSE_WEIGHT_DECAY=5e-4, DENSE_DROPOUT=0.5,
                          DEPTHS=[2, 4, 8, 16, 32], DEEP_HIDDEN=448, DEEP_SPARSITIES=[0.04, 0.5, 0.9], DEEP_LR=0.005,
                          DEEP_EPOCHS=400, DEEP_SEEDS=5, MATCH_POINTS=1.0, HIGH_SPARSITY=0.9, THREADS=0),
        },
        minutes={"smoke": 0.4, "paper": 120},
        gallery=[
            GalleryRow("UGTs, GCN on Cora (untrained, sparsity chosen on validation) vs trained dense GCN",
                       "An untrained sparse GCN (UGTs) matches the trained dense GCN on Cora",
                       lambda m: (f"{_acc(m, 'ugts/gcn/L2/val_best')} at sparsity "
                                  f"{m.get('ugts/gcn/L2/val_best_sparsity', float('nan')):g} vs dense "
                                  f"{_acc(m, 'dense/gcn/L2/0.0')}"),
                       "81.3 % at sparsity 0.9 (authors' example notebook)",
                       claim_id="gcn_matches_dense"),
            GalleryRow("UGTs vs edge-popup, GCN/GAT on Cora, sparsity >= 0.9",
                       "UGTs beats edge-popup at high sparsity",
                       lambda m: f"mean gap {100 * m.get('ugts_minus_edgepopup_high', float('nan')):+.2f} points",
                       "UGTs better than edge-popup at high sparsity (paper, Cora sweep)",
                       claim_id="ugts_beats_edgepopup"),
            GalleryRow("Deep GCN on Cora: UGTs vs trained dense",
                       "UGTs degrades less with depth than trained dense",
                       lambda m: (f"drop 2 -> {m.get('deep_max_layers', 0)} layers: UGTs "
                                  f"{100 * m.get('ugts/depth_drop', float('nan')):.1f} vs dense "
                                  f"{100 * m.get('dense/depth_drop', float('nan')):.1f} points"),
                       "UGTs far above dense at 16/32 layers (paper, deep GCN study)",
                       claim_id="ugts_degrades_less"),
            GalleryRow("Deep GCN on Cora, deepest: UGTs vs trained dense",
                       "Deep UGTs GCNs beat trained dense GCNs of the same depth (16 layers and more)",
                       lambda m: (f"{m.get('deep_max_layers', 0)} layers: UGTs "
                                  f"{_acc(m, 'deep/ugts/gcn/L' + str(m.get('deep_max_layers', 0)) + '/val_best')} vs dense "
                                  f"{_acc(m, 'deep/dense/gcn/L' + str(m.get('deep_max_layers', 0)))}"),
                       "UGTs above dense at 16 and 32 layers (paper, deep GCN study)",
                       claim_id="deep_ugts_beat_dense"),
        ],
    ),
    "10_dsn": Notebook(
        stem="10_dsn",
        summary="DSN: dynamic sparse 1-D CNN for time-series classification",
        title="DSN: dynamic sparse CNN for time-series classification (UCR/UEA)",
        paper=("Xiao, Wu, Zhang, Liu, Pechenizkiy, Mocanu, Mocanu 2022, NeurIPS, 'Dynamic Sparse Network for "
               "Time Series Classification: Learning What to \"See\"'"),
        claim=("Dynamic sparse training inside 13/26/39-tap kernel windows (density 0.2) is at least as accurate as "
               "the same dense CNN at a fraction of its FLOPs, and close to ROCKET / InceptionTime / OS-CNN"),
        profiles={
            "smoke": dict(DATASETS=["ucr:ItalyPowerDemand"], ARMS=["dense", "static", "dsn"], SEEDS=1, WIDTH=4,
                          DEPTH=2, KERNEL=39, GROUPS=3, PADDING="zero", ADAPTIVE_SIZE=50, DENSITY=0.2, ALPHA=0.5,
                          UPDATE_EVERY=2, T_END=0.8, FLOOR=0.001, EPOCHS=4, LR=1e-3, LR_MIN=1e-4, BATCH_SIZE=16,
                          SELECT="min_train_loss", THREADS=1),
            "cpu": dict(DATASETS=["ucr:GunPoint", "ucr:ItalyPowerDemand"], ARMS=["dense", "static", "dsn"], SEEDS=5,
                        WIDTH=16, DEPTH=4, KERNEL=39, GROUPS=3, PADDING="zero", ADAPTIVE_SIZE=50, DENSITY=0.2,
                        ALPHA=0.5, UPDATE_EVERY=5, T_END=0.8, FLOOR=0.001, EPOCHS=150, LR=1e-3, LR_MIN=1e-4,
                        BATCH_SIZE=16, SELECT="min_train_loss", THREADS=1),
            "paper": dict(DATASETS=["ucr:GunPoint", "ucr:ItalyPowerDemand"], ARMS=["dense", "static", "dsn"], SEEDS=3,
                          WIDTH=47, DEPTH=4, KERNEL=39, GROUPS=3, PADDING="zero", ADAPTIVE_SIZE=50, DENSITY=0.2,
                          ALPHA=0.5, UPDATE_EVERY=5, T_END=0.8, FLOOR=0.001, EPOCHS=1000, LR=3e-4, LR_MIN=1e-4,
                          BATCH_SIZE=16, SELECT="min_train_loss", THREADS=0),
        },
        minutes={"smoke": 0.4, "paper": 180},
        gallery=[
            GalleryRow("DSN vs the same CNN dense (GunPoint / ItalyPowerDemand)",
                       "DSN is at least as accurate as its dense counterpart with under 50% of its FLOPs",
                       lambda m: "; ".join(
                           f"{ds.split(':')[-1]}: DSN {_acc(m, f'{ds}/dsn')} vs dense {_acc(m, f'{ds}/dense')}, "
                           f"{100 * m.get(f'{ds}/dsn/inference_flops_ratio', float('nan')):.1f} % of dense FLOPs"
                           for ds in ("ucr:GunPoint", "ucr:ItalyPowerDemand")),
                       "state-of-the-art accuracy at < 50 % of the FLOPs of recent baselines (UCR/UEA archives, abstract)",
                       claim_id="dsn_vs_dense"),
            GalleryRow("DSN vs published ROCKET / InceptionTime / OS-CNN",
                       "DSN is within 2 points of the published accuracies of ROCKET, InceptionTime and OS-CNN",
                       lambda m: "; ".join(
                           f"{ds.split(':')[-1]}: DSN {_acc(m, f'{ds}/dsn')}, worst gap "
                           f"{m.get(f'{ds}/dsn/worst_gap_to_published_points', float('nan')):+.2f} points"
                           for ds in ("ucr:GunPoint", "ucr:ItalyPowerDemand")),
                       "GunPoint 100 / 100 / 99.9 %; ItalyPowerDemand 97.0 / 96.5 / 94.7 % (OS-CNN tables)",
                       claim_id="dsn_near_published"),
        ],
    ),
    "07_ctre": Notebook(
        stem="07_ctre",
        summary="CTRE: cosine-similarity growth for extremely sparse MLPs vs SET / RigL",
        title="CTRE: cosine-similarity topology exploration for extremely sparse MLPs",
        paper=("Atashgahi, Pieterse, Liu, Mocanu, Veldhuis, Pechenizkiy 2022, Machine Learning, "
               "'A Brain-inspired Algorithm for Training Highly Sparse Neural Networks' (CTRE)"),
        claim="CTRE beats SET and RigL at extreme sparsity",
        profiles={
            "smoke": dict(DATASETS=["Yale", "madelon"], METHODS=["dense", "set", "rigl", "ctre_sim", "ctre_seq"],
                          HIDDEN=[32, 32, 32], EPSILON=1, ZETA=0.2, EPOCHS=4, SEEDS=1, BATCH_SIZE=100, LR=0.05,
                          MOMENTUM=0.9, WEIGHT_DECAY=1e-4, SCHEDULE="constant", VAL_FRACTION=0.1, PATIENCE=2,
                          GROW_INIT="he_uniform", SIM_BATCH_SIZE=1000, RIGL_T_END=1.0, SCALING="paper",
                          INIT="glorot", SPARSE_INITS=["dense", "sparse"], THREADS=1),
            "cpu": dict(DATASETS=["madelon", "Yale"],
                        METHODS=["dense", "set", "rigl", "ctre_sim", "ctre_seq"],
                        HIDDEN=[1000, 1000, 1000], EPSILON=1, ZETA=0.2, EPOCHS={"madelon": 40, "Yale": 150},
                        SEEDS=3, BATCH_SIZE=100, LR=0.01, MOMENTUM=0.9, WEIGHT_DECAY=1e-4, SCHEDULE="constant",
                        VAL_FRACTION=0.1, PATIENCE=40, GROW_INIT="he_uniform", SIM_BATCH_SIZE=2000,
                        RIGL_T_END=1.0, SCALING="paper", INIT="glorot", SPARSE_INITS=["dense", "sparse"], THREADS=1),
            "paper": dict(DATASETS=["madelon", "PCMAC", "BASEHOCK", "Yale", "mnist"],
                          METHODS=["dense", "set", "rigl", "ctre_sim", "ctre_seq"],
                          HIDDEN=[1000, 1000, 1000], EPSILON=1, ZETA=0.2, EPOCHS=500, SEEDS=5, BATCH_SIZE=100,
                          LR=0.01, MOMENTUM=0.9, WEIGHT_DECAY=1e-4, SCHEDULE="constant", VAL_FRACTION=0.1,
                          PATIENCE=40, GROW_INIT="he_uniform", SIM_BATCH_SIZE=1000, RIGL_T_END=1.0,
                          SCALING="paper", INIT="glorot", SPARSE_INITS=["dense"], THREADS=0),
        },
        minutes={"smoke": 0.3, "paper": 1500},
        gallery=[
            GalleryRow("CTRE_sim / CTRE_seq vs SET / RigL (MLP, 3 hidden layers, ER eps = 1, all layers sparse)",
                       "CTRE beats SET and RigL at extreme sparsity",
                       lambda m: (f"better CTRE variant beats the better of SET/RigL on {m.get('claim/wins', '—')} of "
                                  f"{m.get('claim/datasets', '—')} datasets (mean margin "
                                  f"{100 * m.get('claim/mean_margin', float('nan')):+.2f} points)"),
                       "CTRE best on most data sets at eps = 1 (paper's tables; numbers not retrieved here)",
                       claim_id="ctre_beats_set_rigl"),
            GalleryRow("CTRE vs SET / RigL, sparsity-aware init (Glorot rescaled to the kept fan-in)",
                       "CTRE beats SET and RigL at extreme sparsity (sparsity-aware init 'sparse')",
                       lambda m: (f"better CTRE variant beats the better of SET/RigL on "
                                  f"{m.get('claim/sparse+sparse_init/wins', '—')} of "
                                  f"{m.get('claim/sparse+sparse_init/datasets', '—')} datasets (mean margin "
                                  f"{100 * m.get('claim/sparse+sparse_init/mean_margin', float('nan')):+.2f} points)"),
                       "CTRE best on most data sets at eps = 1 (dense-scale Glorot init)",
                       claim_id="ctre_beats_set_rigl+sparse_init"),
        ],
    ),
    "13_alacpd": Notebook(
        stem="13_alacpd",
        title="ALACPD: memory-free online change-point detection with an LSTM-autoencoder ensemble (TCPD)",
        paper=("Atashgahi, Mocanu, Veldhuis, Pechenizkiy 2022, arXiv:2207.03932, 'Memory-free Online Change-point "
               "Detection: A Novel Neural Network Approach'; van den Burg, Williams 2020, arXiv:2003.06222 (TCPD)"),
        claim=_ALACPD_CLAIMS[0] + "; " + _ALACPD_CLAIMS[1],
        profiles={
            "smoke": dict(_ALACPD_COMMON, SERIES=["nile", "ozone"], MAX_LENGTH=None, SEEDS=1, WARMUP_EPOCHS=2,
                          EPOCHS_PER_SAMPLE=1, EPOCHS_AFTER_CHANGE=5),
            "cpu": dict(_ALACPD_COMMON, SERIES="mirror", MAX_LENGTH=600, SEEDS=1, WARMUP_EPOCHS=10,
                        EPOCHS_PER_SAMPLE=5, EPOCHS_AFTER_CHANGE=100),
            "paper": dict(_ALACPD_COMMON, SERIES="all", MAX_LENGTH=None, SEEDS=5, WARMUP_EPOCHS=10,
                          EPOCHS_PER_SAMPLE=5, EPOCHS_AFTER_CHANGE=100),
        },
        minutes={"smoke": 0.5, "paper": 90},
        gallery=[
            GalleryRow("ALACPD vs PELT / BinSeg / BottomUp / Window (ruptures, default settings) and zero, covering",
                       _ALACPD_CLAIMS[0],
                       lambda m: (f"ALACPD average rank {m.get('default/cover/rank/alacpd', float('nan')):.2f} vs best other "
                                  f"{m.get('default/cover/best_other_rank', float('nan')):.2f} "
                                  f"({m.get('default/cover/best_other', '—')}); mean covering "
                                  f"{m.get('default/cover/mean/alacpd', float('nan')):.3f}; {m.get('series', '—')} series"),
                       "ALACPD ranks first on average covering (TCPD, abstract)", claim_id="alacpd_first_covering"),
            GalleryRow("ALACPD vs the same baselines, F1 (margin 5)",
                       _ALACPD_CLAIMS[1],
                       lambda m: (f"mean F1 ALACPD {m.get('default/f1/mean/alacpd', float('nan')):.3f} vs best other "
                                  f"{m.get('default/f1/best_other_mean', float('nan')):.3f} "
                                  f"({m.get('default/f1/best_other', '—')}); average rank "
                                  f"{m.get('default/f1/rank/alacpd', float('nan')):.2f}"),
                       "on par with the best performer on F1 (TCPD, abstract)", claim_id="alacpd_on_par_f1"),
        ],
    ),
    # -- new notebooks go above this line (one Notebook entry each) --
}


# Notebooks for exploring, not reproducing: no profiles, no record, no claims. They are opened in
# JupyterLab; the smoke tests execute them headlessly with papermill, and `sparsenb run` refuses them.
INTERACTIVE: dict[str, str] = {
    "00_explore": "interactive explorer: per-layer densities and a layer's mask under static / SET / RigL, "
                  "live on digits (ipywidgets; logic in sparsenb.explorer)",
}


class Config(dict):
    """A dict of resolved settings that shows itself as a table in Jupyter."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"no setting {key!r}; settings are {sorted(self)}") from None

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td><code>{k}</code></td><td>{v!r}</td></tr>" for k, v in self.items())
        return f"<table><tr><th>setting</th><th>value</th></tr>{rows}</table>"


def resolve(stem: str, profile: str, overrides: dict[str, Any] | None = None) -> Config:
    """The settings of ``profile`` for notebook ``stem``, with non-``None`` overrides applied.

    Overrides are checked first (:func:`sparsenb.params.check`): an unknown name, a wrong type or a
    scalar where a list belongs raises :class:`~sparsenb.params.ParameterError` (a ``ValueError``)
    with a one-line message, before any work starts.
    """
    if stem not in NOTEBOOKS:
        raise ValueError(f"unknown notebook {stem!r}; known: {sorted(NOTEBOOKS)}")
    nb = NOTEBOOKS[stem]
    if profile not in nb.profiles:
        raise ValueError(f"unknown PROFILE {profile!r} for {stem}; choose one of {sorted(nb.profiles)}")
    cfg = Config(nb.profiles[profile], PROFILE=profile)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    spec = params.notebook_spec(stem)
    params.check({k: p for k, p in spec.items() if k in cfg}, given, where=stem, profile=profile)
    cfg.update(given)
    return cfg
