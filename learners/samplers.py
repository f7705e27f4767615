"""The settings each active-learning sampler reads: one rule for :class:`learners.active.ActiveLearning`
and the ``matrep active`` config (:mod:`learners.active_config`)."""

from __future__ import annotations

from typing import Any, Mapping

#: The settings that only one sampler reads (:meth:`learners.active.ActiveLearning._sample`), with
#: their defaults. A leaf module: :mod:`learners.active_config` checks a config without importing
#: torch, and :mod:`learners.active` shares the rule without an import cycle.
SAMPLER_SETTINGS = {"adversarial": {"kT": 0.1, "attack_steps": 30, "attack_lr": 1e-2},
                    "md": {"temperature": 300.0, "md_steps": 20, "timestep": 1.0},
                    "random": {"displacement": 0.05}}


def foreign_sampler_setting(sampler: str, given: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first setting of ``given`` (name: value, None meaning not given) that another sampler than
    ``sampler`` reads, with that sampler; None if there is none. Such a setting was accepted and never
    read (sampler = 'random' with attack_steps = 500, kT = 5, md_steps = 1000, temperature = 5000 gave
    bit-identical candidates)."""
    for owner, defaults in SAMPLER_SETTINGS.items():
        if owner != sampler:
            for name in defaults:
                if given.get(name) is not None:
                    return name, owner
    return None


def foreign_settings(sampler: str) -> set[str]:
    """The names of the settings that only samplers other than ``sampler`` read."""
    return {name for owner, defaults in SAMPLER_SETTINGS.items() if owner != sampler for name in defaults}
