"""An ASE calculator around a neural potential or a committee."""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator as ASECalculator
from ase.calculators.calculator import all_changes
from ase.constraints import full_3x3_to_voigt_6_stress

from learners.errors import InputError

from .base import NeuralPotential
from .committee import Committee

__all__ = ["Calculator"]


class Calculator(ASECalculator):
    """ASE calculator: energy (eV), forces (eV/Å) and, for 3-D periodic cells, stress (eV/Å^3, Voigt).

    A :class:`Committee` reports the members' mean, and its spread in ``results["energy_std"]``
    (eV) and ``results["forces_std"]`` (``(N, 3)``, eV/Å) (also ``"stress_std"`` when the stress
    was computed).

    Parameters
    ----------
    model : NeuralPotential or Committee
        Evaluated on its own device and dtype; the neighbour list is rebuilt at every call.

    Examples
    --------
    >>> from ase.build import molecule
    >>> from learners.potentials import PaiNN
    >>> atoms = molecule("H2O")
    >>> atoms.calc = Calculator(PaiNN(cutoff=5.0, n_features=8, n_interactions=1))
    >>> atoms.get_forces().shape
    (3, 3)
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, model: NeuralPotential | Committee, **kwargs) -> None:
        if not isinstance(model, (NeuralPotential, Committee)):
            raise InputError(f"model must be a learners.potentials model or Committee, got {type(model).__name__}")
        super().__init__(**kwargs)
        self.model = model

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        stress = "stress" in properties
        if stress and not self.atoms.pbc.all():
            from ase.calculators.calculator import PropertyNotImplementedError

            raise PropertyNotImplementedError("the stress needs a cell periodic in all three directions")
        out = self.model.predict(self.atoms, forces=True, stress=stress)

        def arr(name):
            return out[name].detach().cpu().double().numpy()

        energy = float(arr("energy")[0])
        self.results = {"energy": energy, "free_energy": energy, "forces": arr("forces")}
        if stress:
            self.results["stress"] = full_3x3_to_voigt_6_stress(arr("stress")[0])
        if isinstance(self.model, Committee):
            self.results["energy_std"] = float(arr("energy_std")[0])
            self.results["forces_std"] = arr("forces_std")
            if stress:
                self.results["stress_std"] = full_3x3_to_voigt_6_stress(np.asarray(arr("stress_std")[0]))
