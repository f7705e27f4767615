"""WL similarity matrix of every bundled glycan, out of core: serial, on a Dask LocalCluster, and on
a scheduler given by address; the three files must be equal to the last bit.

Writes ``pairwise(graphs, "wl", out=...)`` (a 23,522 x 23,522 float64 memory map, 4.4 GB, plus
its mask) into ``--folder`` (default a temporary folder, deleted at the end), then the WL
10-nearest-neighbour graph (``knn=10``, never the dense matrix). Equality is checked block by block
on the memory maps. The graphs come from the cached index (``graphs.index.dataset_index``).

Usage: python benchmarks/pairwise_out_of_core.py [--limit N] [--workers 2] [--scheduler ADDRESS]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
import warnings

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")


def _equal(a: np.ndarray, b: np.ndarray, rows: int = 2048) -> bool:
    return all(np.array_equal(a[i : i + rows], b[i : i + rows]) for i in range(0, len(a), rows))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=0, help="first N glycans only (0: all)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scheduler", default=None, help="also run on this Dask scheduler")
    parser.add_argument("--folder", default=None)
    args = parser.parse_args()

    import dask.distributed as distributed

    from graphs.index import dataset_index
    from graphs.query import pairwise

    index = dataset_index("glycans")
    t = time.perf_counter()
    graphs = index.graphs(range(args.limit) if args.limit else None)
    print(f"{len(graphs)} glycan graphs from the index in {time.perf_counter() - t:.1f} s")
    folder = args.folder or tempfile.mkdtemp(prefix="matrep-wl-")
    rows = []
    try:
        t = time.perf_counter()
        serial = pairwise(graphs, "wl", out=os.path.join(folder, "serial.npy"))
        rows.append(("serial", time.perf_counter() - t, True))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                          dashboard_address=None) as cluster:
                with distributed.Client(cluster) as client:
                    t = time.perf_counter()
                    local = pairwise(graphs, "wl", out=os.path.join(folder, "local.npy"), client=client)
                    rows.append((f"LocalCluster({args.workers} workers)", time.perf_counter() - t,
                                 _equal(local, serial)))
            if args.scheduler:
                with distributed.Client(args.scheduler) as client:
                    t = time.perf_counter()
                    remote = pairwise(graphs, "wl", out=os.path.join(folder, "remote.npy"),
                                      client=client)
                    rows.append((f"scheduler {args.scheduler}", time.perf_counter() - t,
                                 _equal(remote, serial)))
        t = time.perf_counter()
        knn = pairwise(graphs, "wl", out=os.path.join(folder, "knn.npz"), knn=10)
        seconds = time.perf_counter() - t
        check = np.random.default_rng(0).choice(len(graphs), 50, replace=False)
        same = all(np.array_equal(knn["scores"][i], np.sort(np.delete(serial[i], i))[::-1][:10])
                   for i in check)
        rows.append(("knn=10, serial", seconds, same))
    finally:
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)
    for name, seconds, equal in rows:
        print(f"| WL matrix of {len(graphs)} glycans, out of core, {name} | {seconds:.1f} s | "
              f"equal to serial: {equal} |")
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}")
    assert all(equal for *_, equal in rows)


if __name__ == "__main__":
    main()
