"""Test support: write a generate() config dict as the TOML file a user would write."""

from __future__ import annotations

import json
from pathlib import Path


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
