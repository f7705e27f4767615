"""Wall time of a warm `matrep similar` (the README's main job) as a whole process, and where it goes.

Runs the README's query as a fresh process ``--repeat`` times against the cached index of the
bundled glycans (built first if absent), and reports the median wall time beside the parts measured
inside one process: Python and matrep's imports for the command, opening the index, the WL top-10.
The modules the command imported are listed, so a heavy import that creeps back in is seen.

Usage: python benchmarks/similar_warm.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

QUERY = "Neu5Ac(a2-3)Gal(b1-4)[Fuc(a1-3)]GlcNAc(b1-2)Man"
HEAVY = ("sklearn", "pandas", "torch", "graphs.ged", "graphs.kernels", "grakel")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-c", "from reprs.cli import main; raise SystemExit(main())", "similar", QUERY,
               "--top", "10", "--quiet"]
    subprocess.run(command, env=env, check=True, capture_output=True)  # builds the index if absent
    walls = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        walls.append(time.perf_counter() - t)
    probe = (
        "import sys, time\nt0 = time.perf_counter()\n"
        "from graphs.index import dataset_index\nfrom graphs.query import top_k\nfrom reprs import glycan_graph\n"
        "t1 = time.perf_counter()\nindex = dataset_index('glycans')\nt2 = time.perf_counter()\n"
        f"r = top_k(glycan_graph({QUERY!r}), index, 'wl', 10)\nt3 = time.perf_counter()\n"
        f"print(t1 - t0, t2 - t1, t3 - t2, [m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], env=env, check=True, capture_output=True, text=True)
    imports, opening, query, heavy = out.stdout.split(" ", 3)
    print(f"{platform.python_version()}, {os.cpu_count()} cores; query {QUERY}")
    print(f"warm `matrep similar`, whole process: median {statistics.median(walls):.2f} s "
          f"(min {min(walls):.2f}, max {max(walls):.2f}, {args.repeat} runs)")
    print(f"inside one process: imports {float(imports):.2f} s, opening the index {float(opening):.2f} s, "
          f"WL top-10 {float(query):.3f} s; heavy modules imported: {heavy.strip()}")


if __name__ == "__main__":
    main()
