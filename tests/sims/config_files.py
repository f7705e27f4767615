"""Test support for generate(): a config dict as the TOML file a user would write, and a run
killed by SIGKILL part-way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch


def write_toml(path: Path, cfg: dict) -> None:
    """Write ``cfg`` (seed, optional engine, the system/potential/md/output tables, stages) as TOML.

    JSON scalars and arrays are valid TOML values, so ``json.dumps`` writes each value.
    """
    lines = [f"seed = {cfg['seed']}"]
    if "engine" in cfg:
        lines.append(f"engine = {json.dumps(cfg['engine'])}")
    for table in ("system", "potential", "md", "output"):
        lines.append(f"[{table}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in cfg[table].items()]
    for stage in cfg["stages"]:
        lines.append("[[stages]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in stage.items()]
    path.write_text("\n".join(lines) + "\n")


def kill_after_checkpoint(config: Path, checkpoint: Path, step: int) -> dict:
    """Run ``generate(config)`` in a one-thread subprocess (the same arithmetic as an in-process run),
    SIGKILL it once ``checkpoint`` records ``step`` or more (or after 120 s), and return the checkpoint."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    code = f"import torch; torch.set_num_threads(1); from sims.generate import generate; generate({str(config)!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.time() + 120
    while time.time() < deadline:
        if checkpoint.exists() and torch.load(checkpoint, weights_only=True)["step"] >= step:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return torch.load(checkpoint, weights_only=True)
