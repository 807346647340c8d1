"""The claim rules of notebook 01_set_rigl (sparsenb.experiments.set_rigl.claims)."""
import pytest

from sparsenb.experiments import set_rigl


def _summary(means):
    return [{"method": m, "sparsity": s, "mean": v, "std": 0.001} for (m, s), v in means.items()]


CFG = {"SPARSITIES": [0.9, 0.98], "SPARSE_INITS": ["dense", "sparse"], "SEEDS": 3, "DATASET": "mnist5k"}


def _means(set_98=0.95, rigl_98=0.96, set_90=0.975, sparse_shift=0.0):
    out = {("dense", 0.0): 0.978}
    for init, shift in (("dense", 0.0), ("sparse", sparse_shift)):
        tag = "" if init == "dense" else "+sparse_init"
        out.update({(f"static{tag}", 0.9): 0.96 + shift, (f"set{tag}", 0.9): set_90 + shift,
                    (f"rigl{tag}", 0.9): 0.97 + shift, (f"static{tag}", 0.98): 0.93 + shift,
                    (f"set{tag}", 0.98): set_98 + shift, (f"rigl{tag}", 0.98): rigl_98 + shift})
    return out


def test_claims_hold_where_the_rules_say_and_each_init_arm_has_its_ids():
    border = {"static @ 0.98": 0.30, "set @ 0.98": 0.10, "rigl @ 0.98": 0.12}
    m, claims = set_rigl.claims(CFG, _summary(_means()), border, num_classes=10)
    by_id = {c["id"]: c for c in claims}
    assert set(by_id) == {"set_beats_static", "rigl_ge_set_at_max_sparsity", "sparse_near_dense_at_min_sparsity",
                          "set_beats_static+sparse_init", "rigl_ge_set_at_max_sparsity+sparse_init",
                          "sparse_near_dense_at_min_sparsity+sparse_init", "connections_leave_border"}
    assert all(c["holds"] for c in claims)
    assert "gap 0.30 points" in by_id["sparse_near_dense_at_min_sparsity"]["detail"]
    assert m["set/0.98/test_acc_mean"] == 0.95 and m["seeds"] == 3 and m["first_layer_border_share"] == border


def test_claims_fail_when_the_comparisons_go_the_other_way_and_chance_is_inconclusive():
    m, claims = set_rigl.claims(CFG, _summary(_means(set_98=0.92, rigl_98=0.91, set_90=0.95, sparse_shift=-0.02)),
                                {}, num_classes=10)
    by_id = {c["id"]: c for c in claims}
    assert by_id["set_beats_static"]["holds"] is False                       # 0.92 < static 0.93 at 0.98
    assert by_id["rigl_ge_set_at_max_sparsity"]["holds"] is False
    assert by_id["sparse_near_dense_at_min_sparsity"]["holds"] is False      # best 0.97 is 0.8 points below
    assert by_id["connections_leave_border"]["state"] == "not evaluated"
    chance = _means()
    chance[("static", 0.98)] = 0.1                                            # an arm at chance (10 classes)
    _, claims = set_rigl.claims(CFG, _summary(chance), {}, num_classes=10)
    assert {c["id"]: c for c in claims}["set_beats_static"]["state"] == "inconclusive"


def test_claims_on_the_committed_record_give_its_committed_verdicts():
    """The rules moved out of the notebook unchanged: fed the numbers of results/01_set_rigl/cpu, they
    give the record's claims (text, state, detail) exactly."""
    import json
    from pathlib import Path
    from sparsenb.nb.catalog import resolve

    record = json.loads((Path(__file__).resolve().parents[1] / "results/01_set_rigl/cpu/results.json").read_text())
    metrics = record["metrics"]
    summary = [{"method": k.split("/")[0], "sparsity": float(k.split("/")[1]), "mean": v,
                "std": metrics[k.replace("_mean", "_std")]} for k, v in metrics.items() if k.endswith("/test_acc_mean")]
    m, claims = set_rigl.claims(resolve("01_set_rigl", "cpu"), summary, metrics["first_layer_border_share"], 10)
    assert [(c["id"], c["text"], c.get("detail", "")) for c in claims] == [
        (c["id"], c["text"], c["detail"]) for c in record["claims"]]
    states = [c.get("state") or {True: "held", False: "not held"}[c["holds"]] for c in claims]
    assert states == [c["state"] for c in record["claims"]]
    assert {k: v for k, v in m.items()} == {k: metrics[k] for k in m}
