"""Tests for sparsenb.data.graphs: Planetoid parsing (hand-made files, Citeseer's isolated test
nodes), the checksum policy, the restricted unpickler, GraphData validation and the real Cora."""
import collections
import os
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sparsenb.data import registry as data
from sparsenb.data import DataError
from sparsenb.data.graphs import PLANETOID_SHA256, PLANETOID_SUFFIXES, GraphData, load_graph, parse_planetoid



def planetoid_bytes(test_index, n_allx=3, n_train=2, feat=4, classes=3):
    """Tiny Planetoid files: allx rows i have feature i % feat = 1; test row j has feature (j+1) % feat = 2.

    Labels: allx row i -> class i % classes; test row j -> class (j + 1) % classes.
    """
    allx = np.zeros((n_allx, feat), dtype=np.float32)
    ally = np.zeros((n_allx, classes), dtype=np.float32)
    for i in range(n_allx):
        allx[i, i % feat] = 1.0
        ally[i, i % classes] = 1.0
    tx = np.zeros((len(test_index), feat), dtype=np.float32)
    ty = np.zeros((len(test_index), classes), dtype=np.float32)
    for j in range(len(test_index)):
        tx[j, (j + 1) % feat] = 2.0
        ty[j, (j + 1) % classes] = 1.0
    graph = collections.defaultdict(list)
    graph[0] = [1, 0, 1]          # self loop and a duplicate
    graph[1] = [0, 2]
    graph[test_index[0]] = [0]
    return {"x": pickle.dumps(sp.csr_matrix(allx[:n_train])), "y": pickle.dumps(ally[:n_train]),
            "tx": pickle.dumps(sp.csr_matrix(tx)), "ty": pickle.dumps(ty),
            "allx": pickle.dumps(sp.csr_matrix(allx)), "ally": pickle.dumps(ally),
            "graph": pickle.dumps(graph), "test.index": "\n".join(map(str, test_index)).encode()}


def test_parse_puts_test_rows_at_their_node_ids():
    g = parse_planetoid("toy", planetoid_bytes([4, 3]), normalize_features=False, n_val=1)
    assert g.num_nodes == 5 and g.num_features == 4 and g.num_classes == 3
    # test row 0 -> node 4 (feature 1 = 2.0, class 1); test row 1 -> node 3 (feature 2, class 2)
    assert g.x[4].tolist() == [0, 2, 0, 0] and g.x[3].tolist() == [0, 0, 2, 0]
    assert g.x[:3].tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]
    assert g.y.tolist() == [0, 1, 2, 2, 1]
    assert g.train_mask.tolist() == [True, True, False, False, False]
    assert g.val_mask.tolist() == [False, False, True, False, False]  # the n_val after train
    assert g.test_mask.tolist() == [False, False, False, True, True]


def test_parse_edges_undirected_unique_without_self_loops():
    g = parse_planetoid("toy", planetoid_bytes([4, 3]), n_val=1)
    edges = {tuple(e) for e in g.edge_index.t().tolist()}
    assert edges == {(0, 1), (1, 0), (1, 2), (2, 1), (4, 0), (0, 4)}
    assert g.num_edges == 6


def test_parse_citeseer_style_isolated_test_nodes_get_zero_rows_and_no_split():
    # test ids 3 and 6: nodes 4 and 5 are in the test range but have no tx row
    g = parse_planetoid("toy", planetoid_bytes([6, 3]), normalize_features=False, n_val=1)
    assert g.num_nodes == 7
    assert g.x[6].tolist() == [0, 2, 0, 0] and g.x[3].tolist() == [0, 0, 2, 0]
    assert g.x[4].abs().sum() == 0 and g.x[5].abs().sum() == 0
    assert not (g.train_mask[4:6] | g.val_mask[4:6] | g.test_mask[4:6]).any()
    assert g.test_mask.tolist() == [False, False, False, True, False, False, True]


def test_row_normalisation():
    g = parse_planetoid("toy", planetoid_bytes([6, 3]), normalize_features=True, n_val=1)
    sums = g.x.sum(1)
    assert torch.allclose(sums[[0, 1, 2, 3, 6]], torch.ones(5)) and sums[4] == 0 and sums[5] == 0


def test_missing_file_and_bad_test_index_are_clear_errors():
    raw = planetoid_bytes([4, 3])
    del raw["graph"]
    with pytest.raises(ValueError, match="graph"):
        parse_planetoid("toy", raw)
    with pytest.raises(DataError, match="test.index"):
        parse_planetoid("toy", planetoid_bytes([5, 4]))  # does not start at len(allx) = 3


def test_unpickler_refuses_code():
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    raw = planetoid_bytes([4, 3])
    raw["graph"] = pickle.dumps(Evil())
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        parse_planetoid("toy", raw)


def test_citeseer_and_pubmed_have_pinned_checksums_and_fail_clearly_offline(tmp_path, monkeypatch):
    for name in ("citeseer", "pubmed"):
        sums = PLANETOID_SHA256[name]
        assert set(sums) == set(PLANETOID_SUFFIXES) and all(len(v) == 64 for v in sums.values())
    # no cache, an empty mirror and no network: one DataError naming the file and the mirror path
    monkeypatch.setenv("SPARSENB_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SPARSENB_DATA_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.setattr(data, "_download", _no_network)
    with pytest.raises(DataError, match=r"ind\.citeseer\.x") as err:
        load_graph("citeseer")
    assert str(tmp_path / "mirror") in str(err.value)
    with pytest.raises(ValueError, match="lack the suffixes"):
        load_graph("citeseer", checksums={"x": "0" * 64})
    with pytest.raises(DataError, match="Planetoid member 'no-such-graph'(.|\n)*Pinned here"):
        load_graph("no-such-graph")  # any member name is tried; offline and in no mirror it fails clearly
    with pytest.raises(ValueError, match="unknown graph dataset"):
        load_graph("a/b")


def _no_network(url, tmp, label):
    raise OSError("network unreachable (test)")


def test_graphs_listed_in_data_registry():
    names = data.available()
    for name in ("cora", "citeseer", "pubmed"):
        assert name in names and "GraphData" in names[name]


def test_graphdata_validation():
    x = torch.zeros(3, 2)
    ok = dict(name="t", x=x, edge_index=torch.tensor([[0, 1], [1, 0]]), y=torch.zeros(3, dtype=torch.int64),
              train_mask=torch.tensor([True, False, False]), val_mask=torch.tensor([False, True, False]),
              test_mask=torch.tensor([False, False, True]), num_classes=2, source="")
    GraphData(**ok)
    with pytest.raises(ValueError, match="outside"):
        GraphData(**{**ok, "edge_index": torch.tensor([[0], [3]])})
    with pytest.raises(ValueError, match="overlap"):
        GraphData(**{**ok, "val_mask": torch.tensor([True, False, False])})
    with pytest.raises(TypeError, match="y must be int64"):
        GraphData(**{**ok, "y": torch.zeros(3)})


@pytest.mark.requires_data("cora")
def test_real_cora_matches_the_published_statistics(monkeypatch, data_mirror):
    monkeypatch.setenv("SPARSENB_DATA_MIRROR", str(data_mirror))
    g = load_graph("cora")
    assert (g.num_nodes, g.num_features, g.num_classes, g.num_edges) == (2708, 1433, 7, 10556)
    assert (int(g.train_mask.sum()), int(g.val_mask.sum()), int(g.test_mask.sum())) == (140, 500, 1000)
    assert g.y.bincount().tolist() == [351, 217, 418, 818, 426, 298, 180]
    assert torch.allclose(g.x.sum(1), torch.ones(2708))
    # train nodes are 0..139, validation 140..639 (the Planetoid split)
    assert g.train_mask[:140].all() and g.val_mask[140:640].all()


@pytest.mark.requires_data("cora")
def test_any_planetoid_member_by_name_from_a_mirror(tmp_path, monkeypatch, capsys, data_mirror):
    import shutil
    (tmp_path / "mirror" / "planetoid").mkdir(parents=True)
    for suffix in PLANETOID_SUFFIXES:  # Cora's files under another member name, not pinned here
        shutil.copyfile(data_mirror / "planetoid" / f"ind.cora.{suffix}",
                        tmp_path / "mirror" / "planetoid" / f"ind.coracopy.{suffix}")
    monkeypatch.setenv("SPARSENB_DATA_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.setenv("SPARSENB_DATA_DIR", str(tmp_path / "cache"))
    g = data.load("planetoid:coracopy")
    assert g.num_nodes == 2708 and g.num_classes == 7
    assert PLANETOID_SHA256["cora"]["x"] in g.source and "no pinned checksum" in capsys.readouterr().out
    monkeypatch.setattr(data, "DOWNLOAD_TIMEOUT", 0.01)
    with pytest.raises(data.DataError, match="Planetoid member 'nosuchgraph'(.|\n)*Pinned here: citeseer, cora, pubmed"):
        data.load("planetoid:nosuchgraph")
