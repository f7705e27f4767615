"""Out-of-core ``pairwise(..., out=PATH)`` and ``knn=k`` (graphs.blockstore) against the in-memory
matrix: equal to the last bit, serially and on Dask, and resumable after a crash."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import dask.distributed as distributed
import networkx as nx
import numpy as np
import pytest

from graphs.errors import InputError, NonOptimalWarning
from graphs.query import PairMetric, pairwise

from tests.graphs.test_query import bound_when_large, label_jaccard, labelled_trees, size_gap

GRAPHS = labelled_trees(1, 29)


class Crash(Exception):
    pass


class CrashAfter:
    """A symmetric metric that raises once it has been called ``limit`` times (a killed job)."""

    def __init__(self, limit: int | None):
        self.limit, self.calls = limit, 0

    def __call__(self, a: nx.Graph, b: nx.Graph) -> float:
        self.calls += 1
        if self.limit is not None and self.calls > self.limit:
            raise Crash
        return label_jaccard(a, b)


@pytest.mark.parametrize("metric, block", [("wl", 6), (PairMetric(label_jaccard, symmetric=True), 5),
                                           (size_gap, 7)])
def test_out_of_core_matrix_equals_in_memory(metric, block, tmp_path):
    expected = pairwise(GRAPHS, metric, block=block)
    written = pairwise(GRAPHS, metric, block=block, out=tmp_path / "m.npy")
    assert isinstance(written, np.memmap)
    np.testing.assert_array_equal(written, expected)
    np.testing.assert_array_equal(np.load(tmp_path / "m.npy"), expected)
    assert np.load(tmp_path / "m.exact.npy").all()
    assert np.load(tmp_path / "m.npy.done.npy").all()


def test_a_crashed_job_resumes_without_recomputing_finished_blocks(tmp_path):
    out = tmp_path / "m.npy"
    expected = pairwise(GRAPHS, PairMetric(label_jaccard, symmetric=True), block=4)
    first = CrashAfter(limit=100)
    with pytest.raises(Crash):
        pairwise(GRAPHS, PairMetric(first, symmetric=True, name="jac"), block=4, out=out)
    done = np.load(tmp_path / "m.npy.done.npy")
    assert 0 < done.sum() < len(done)
    second = CrashAfter(limit=None)
    result = pairwise(GRAPHS, PairMetric(second, symmetric=True, name="jac"), block=4, out=out)
    np.testing.assert_array_equal(result, expected)
    n = len(GRAPHS)
    assert second.calls < n * (n + 1) // 2  # only the blocks left undone were computed
    assert first.calls - 1 + second.calls >= n * (n + 1) // 2


@pytest.mark.parametrize("knn", [None, 3])
def test_a_job_stopped_before_its_first_block_after_its_output_was_deleted_recomputes_everything(tmp_path, knn):
    # A finished job's output deleted (journal and done record left): the rerun created a new, empty
    # output and forgot the old done record in memory only; stopped before its first block, it left
    # that record over the new file, and the next run returned the empty matrix (measured: all zeros,
    # no error) as finished.
    out = tmp_path / ("m.npy" if knn is None else "m.npz")
    metric = PairMetric(CrashAfter(limit=None), symmetric=True, name="jac")
    expected = pairwise(GRAPHS, metric, block=4, out=out, knn=knn)
    expected = {k: np.array(v) for k, v in expected.items()} if knn else np.array(expected)
    out.unlink()
    with pytest.raises(Crash):
        pairwise(GRAPHS, PairMetric(CrashAfter(limit=0), symmetric=True, name="jac"), block=4, out=out, knn=knn)
    again = pairwise(GRAPHS, metric, block=4, out=out, knn=knn)
    if knn:
        for k in expected:
            np.testing.assert_array_equal(again[k], expected[k])
    else:
        np.testing.assert_array_equal(again, expected)


def test_another_job_on_the_same_file_is_refused(tmp_path):
    out = tmp_path / "m.npy"
    pairwise(GRAPHS, "wl", out=out)
    with pytest.raises(InputError, match="another job"):
        pairwise(GRAPHS[:-1], "wl", out=out)
    assert json.loads((tmp_path / "m.npy.journal.json").read_text())["key"]["metric"] == "wl"
    with pytest.raises(InputError, match=".npy"):
        pairwise(GRAPHS, "wl", out=tmp_path / "m.bin")


@pytest.mark.parametrize("metric", ["wl", size_gap])
def test_knn_graph_equals_the_dense_ranking(metric, tmp_path):
    dense = pairwise(GRAPHS, metric, block=5)
    similarity = metric == "wl"
    result = pairwise(GRAPHS, metric, block=5, out=tmp_path / "knn.npz", knn=4)
    n = len(GRAPHS)
    for i in range(n):
        others = np.delete(np.arange(n), i)
        key = -dense[i, others] if similarity else dense[i, others]
        best = others[np.lexsort((others, key))[:4]]
        np.testing.assert_array_equal(result["indices"][i], best)
        np.testing.assert_array_equal(result["scores"][i], dense[i, best])
    with pytest.raises(InputError, match="knn must be an integer from 1 to 28"):
        pairwise(GRAPHS, metric, out=tmp_path / "other.npz", knn=n)
    with pytest.raises(InputError, match="give out=PATH.npz"):
        pairwise(GRAPHS, metric, knn=3)


def test_knn_graph_resumed_between_checkpoint_and_done_record_merges_no_block_twice(tmp_path, monkeypatch):
    # A kill after a block's neighbours are saved but before the done-blocks record is rewritten
    # makes the resumed job merge that block again: the merge must not list a neighbour twice.
    from graphs import blockstore

    metric = PairMetric(label_jaccard, symmetric=True, name="jac")
    expected = pairwise(GRAPHS, metric, block=5, out=tmp_path / "whole.npz", knn=4)
    mark, calls = blockstore.Journal.mark, []

    def killed_on_third_mark(journal, tile_id):
        calls.append(tile_id)
        if len(calls) == 3:
            raise Crash
        mark(journal, tile_id)

    monkeypatch.setattr(blockstore.Journal, "mark", killed_on_third_mark)
    with pytest.raises(Crash):
        pairwise(GRAPHS, metric, block=5, out=tmp_path / "knn.npz", knn=4)
    monkeypatch.setattr(blockstore.Journal, "mark", mark)
    resumed = pairwise(GRAPHS, metric, block=5, out=tmp_path / "knn.npz", knn=4)
    for row in resumed["indices"]:
        assert len(set(row.tolist())) == len(row)
    np.testing.assert_array_equal(resumed["indices"], expected["indices"])
    np.testing.assert_array_equal(resumed["scores"], expected["scores"])


def test_bounds_are_flagged_out_of_core(tmp_path):
    with pytest.warns(NonOptimalWarning, match="bounds"):
        pairwise(GRAPHS, PairMetric(bound_when_large, symmetric=True), out=tmp_path / "b.npy")
    values, exact = pairwise(GRAPHS, PairMetric(bound_when_large, symmetric=True),
                             out=tmp_path / "b.npy", return_exact=True)
    sizes = np.array([len(g) for g in GRAPHS])
    np.testing.assert_array_equal(exact, sizes[:, None] + sizes[None, :] < 10)


def test_dask_out_of_core_equals_serial(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                      dashboard_address=None) as cluster, distributed.Client(cluster) as client:
            on_dask = pairwise(GRAPHS, "wl", block=4, out=tmp_path / "d.npy", client=client)
            knn = pairwise(GRAPHS, "wl", block=4, out=tmp_path / "d.npz", knn=3, client=client)
    np.testing.assert_array_equal(on_dask, pairwise(GRAPHS, "wl", block=4))
    serial = pairwise(GRAPHS, "wl", block=4, out=tmp_path / "s.npz", knn=3)
    np.testing.assert_array_equal(knn["indices"], serial["indices"])
    np.testing.assert_array_equal(knn["scores"], serial["scores"])


def test_a_knn_graph_of_another_k_is_refused_not_returned(tmp_path):
    # k is not part of the job's key: a finished (or half-done) kNN job of another k at the same path
    # returned its k neighbours per graph for a different knn= (2 columns when 4 were asked).
    pairwise(GRAPHS, "wl", block=6, out=tmp_path / "k.npz", knn=2)
    with pytest.raises(InputError, match="knn=2.*knn=4"):
        pairwise(GRAPHS, "wl", block=6, out=tmp_path / "k.npz", knn=4)
    assert pairwise(GRAPHS, "wl", block=6, out=tmp_path / "k.npz", knn=2)["indices"].shape == (len(GRAPHS), 2)


def test_another_metric_function_on_the_same_file_is_refused(tmp_path):
    # The job key named a callable by its __name__ alone: pairwise with another lambda, or a
    # function edited since, on the same out= found every block done and returned the first
    # function's matrix (all ones here instead of len(a) + len(b)).
    out = tmp_path / "m.npy"
    first = np.array(pairwise(GRAPHS, lambda a, b: 1.0, out=out))
    assert (first == 1.0).all()
    with pytest.raises(InputError, match="belongs to another job"):
        pairwise(GRAPHS, lambda a, b: float(len(a) + len(b)), out=out)

    def scaled(factor):
        return lambda a, b: factor * len(a)  # closures: the captured value counts too

    pairwise(GRAPHS, scaled(2.0), out=tmp_path / "s.npy")
    with pytest.raises(InputError, match="belongs to another job"):
        pairwise(GRAPHS, scaled(3.0), out=tmp_path / "s.npy")
    # the same function again is the same job: resumed (nothing left to do), its matrix returned
    again = pairwise(GRAPHS, scaled(2.0), out=tmp_path / "s.npy")
    np.testing.assert_array_equal(again, 2.0 * np.array([len(g) for g in GRAPHS])[:, None]
                                  * np.ones(len(GRAPHS)))


def _edge_length_gap(a: nx.Graph, b: nx.Graph) -> float:
    """Difference of total edge ``length`` (an attribute other than label and x)."""
    return abs(sum(d["length"] for *_, d in a.edges(data=True))
               - sum(d["length"] for *_, d in b.edges(data=True)))


def test_a_dataset_with_other_attribute_values_is_another_job(tmp_path):
    # The dataset's key hashed each node's and edge's label and x only: after the edge lengths
    # (which this metric reads) changed, a run into the same out= found every block done and
    # returned the matrix of the old lengths.
    graphs = [g.copy() for g in GRAPHS[:8]]
    for g in graphs:
        nx.set_edge_attributes(g, 1.0, "length")
    out = tmp_path / "m.npy"
    metric = PairMetric(_edge_length_gap, symmetric=True)
    first = np.array(pairwise(graphs, metric, out=out))
    for g in graphs:
        nx.set_edge_attributes(g, 2.0, "length")
    with pytest.raises(InputError, match="belongs to another job"):
        pairwise(graphs, metric, out=out)
    doubled = np.array(pairwise(graphs, metric, out=tmp_path / "n.npy"))
    np.testing.assert_array_equal(doubled, 2.0 * first)
    np.testing.assert_array_equal(doubled, pairwise(graphs, metric))  # in memory: the new lengths


def _edge_weight_gap(a: nx.Graph, b: nx.Graph) -> float:
    """Difference of the summed edge ``w`` tensors."""
    return abs(float(sum(d["w"].detach().sum() for *_, d in a.edges(data=True)))
               - float(sum(d["w"].detach().sum() for *_, d in b.edges(data=True))))


def test_a_dataset_with_other_tensor_attribute_values_is_another_job(tmp_path):
    # An attribute held in a torch tensor was hashed by its class alone (as captured objects are): after
    # its values changed (1 -> 2 in each of an edge's two entries), a run into the same out= found every
    # block done and returned the matrix of the old values (checked on the old blockstore.py: no error,
    # the old matrix, 8.0 off the new one).
    import torch

    graphs = [g.copy() for g in GRAPHS[:6]]
    for g in graphs:
        nx.set_edge_attributes(g, torch.ones(2), "w")
    out = tmp_path / "m.npy"
    metric = PairMetric(_edge_weight_gap, symmetric=True)
    first = np.array(pairwise(graphs, metric, out=out))
    for g in graphs:
        nx.set_edge_attributes(g, torch.full((2,), 2.0, requires_grad=True), "w")
    with pytest.raises(InputError, match="belongs to another job"):
        pairwise(graphs, metric, out=out)
    np.testing.assert_array_equal(pairwise(graphs, metric, out=tmp_path / "n.npy"), 2.0 * first)
    assert first.max() > 0  # the graphs differ in their summed weights


def test_a_dataset_key_with_nested_frozensets_is_the_same_in_every_process():
    # A set's items (and a dict's keys) were sorted by their repr, and the repr of a frozenset lists its
    # items in the order of the process's hash seed: the key of a graph carrying a set of frozensets (or a
    # dict keyed by them) changed from one process to the next, so every resume was refused as another
    # job (checked on the old blockstore.py: four seeds, four keys).
    import os
    import subprocess
    import sys

    code = ("import networkx as nx\n"
            "from graphs.blockstore import dataset_fingerprint\n"
            "g = nx.Graph()\n"
            "g.add_node(0, label='C', groups={frozenset({'alpha', 'beta', 'gamma', 'delta'}), frozenset({'x'})},\n"
            "           by_group={frozenset({'p', 'q', 'r', 's'}): 1.0, frozenset({'t'}): 2.0})\n"
            "print(dataset_fingerprint([g]))\n")
    root = str(Path(__file__).resolve().parents[2])
    keys = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": str(seed),
                                "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
                           ).stdout for seed in (1, 2, 3, 4)}
    assert len(keys) == 1, keys


class _Offset:
    """A metric's option object with the default ``repr`` (a memory address, other in each process)."""

    def __init__(self, value: float):
        self.value = value


def _size_sum(a, b, offset: _Offset, weights: np.ndarray) -> float:
    return float(len(a) + len(b)) + offset.value + float(weights[1000])


def test_a_metric_key_is_the_same_in_a_new_process(tmp_path):
    # The key of a partial hashed the repr of its arguments: an option object's address and a long
    # array's elided repr. A resume (a new process: a new object) was refused as "another job", and
    # two arrays differing in the middle were one job (the first array's matrix returned).
    from functools import partial

    out = tmp_path / "m.npy"
    weights = np.zeros(2001)
    first = pairwise(GRAPHS, partial(_size_sum, offset=_Offset(0.0), weights=weights), out=out)
    again = pairwise(GRAPHS, partial(_size_sum, offset=_Offset(0.0), weights=weights.copy()), out=out)
    np.testing.assert_array_equal(again, first)
    other = weights.copy()
    other[1000] = 1.0
    with pytest.raises(InputError, match="belongs to another job"):
        pairwise(GRAPHS, partial(_size_sum, offset=_Offset(0.0), weights=other), out=out)


def test_ged_with_callable_costs_resumes_in_a_new_process_and_other_costs_are_refused(tmp_path):
    # The key held the repr of the metric's parameters, and a CallableCosts's is its memory address:
    # pairwise(..., "ged", metric_params={"costs": CallableCosts(...)}, out=...) was refused as
    # "another job" in every new process (here: a new object), so such a job could never resume.
    from graphs.costs import CallableCosts

    def uniform(a, b):
        return 0.0 if a.get("label") == b.get("label") else 1.0

    def double(a, b):
        return 0.0 if a.get("label") == b.get("label") else 2.0

    graphs, out = GRAPHS[:6], tmp_path / "m.npy"
    first = np.array(pairwise(graphs, "ged", metric_params={"costs": CallableCosts(node_subst_cost=uniform)}, out=out))
    again = pairwise(graphs, "ged", metric_params={"costs": CallableCosts(node_subst_cost=uniform)}, out=out)
    np.testing.assert_array_equal(again, first)
    with pytest.raises(InputError, match="belongs to another job"):
        pairwise(graphs, "ged", metric_params={"costs": CallableCosts(node_subst_cost=double)}, out=out)
    # plain parameters keep the key journals have always recorded (their repr)
    assert json.loads((tmp_path / "m.npy.journal.json").read_text())["key"]["params"].startswith("sha256:")
    pairwise(graphs, "wl", metric_params={"n_iter": 2}, out=tmp_path / "w.npy")
    assert json.loads((tmp_path / "w.npy.journal.json").read_text())["key"]["params"] == "[('n_iter', 2)]"


def test_a_set_in_a_metric_keys_alike_under_any_hash_seed():
    # ``x in {"a", "b"}`` compiles to a frozenset constant whose repr order follows PYTHONHASHSEED:
    # a resume in a new process met another key and was refused.
    import os
    import subprocess
    import sys

    script = ("from graphs.blockstore import metric_fingerprint\n"
              "print(metric_fingerprint(lambda a, b: float(a.graph.get('k') in {'alpha', 'beta', 'gamma', 'delta'})))")
    root = str(Path(__file__).resolve().parents[2])  # this checkout's graphs, not an installed one
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    keys = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                           env={**env, "PYTHONHASHSEED": str(seed)}).stdout for seed in (1, 2, 3, 4)}
    assert len(keys) == 1, keys
