"""Small glycan tasks built in code for the learners tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reprs.glycans import glycan_graph

RESIDUES = ("Gal", "GlcNAc", "Man", "Glc", "GalNAc")


@pytest.fixture(autouse=True)
def _one_thread():
    # The test machine is shared; tiny models gain nothing from intra-op threads.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def random_glycans(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Linear b1-4 chains of 2-5 residues; half carry a fucose (terminal or as a branch).

    Label 1 = has a fucose: learnable from monomer content, invisible to graph size alone.
    """
    rng = np.random.default_rng(seed)
    strings, labels = [], []
    for i in range(n):
        chain = [str(r) for r in rng.choice(RESIDUES, size=int(rng.integers(2, 6)))]
        text = "(b1-4)".join(chain)
        fuc = i % 2 == 1
        if fuc:
            text = "Fuc(a1-2)" + text if rng.random() < 0.5 else text + "(b1-4)[Fuc(a1-3)]GlcNAc"
        elif rng.random() < 0.5:
            text = text + "(b1-4)GlcNAc"
        strings.append(text)
        labels.append(int(fuc))
    return strings, np.asarray(labels)


@pytest.fixture(scope="session")
def fucose_task():
    """(train graphs, train labels, test graphs, test labels) of the fucose task."""
    strings, y = random_glycans(120, seed=1)
    graphs = [glycan_graph(s) for s in strings]
    return graphs[:80], y[:80], graphs[80:], y[80:]
