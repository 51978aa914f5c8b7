#!/usr/bin/env python3
"""Writes tox21_sample.csv: real molecules with SYNTHETIC Tox21-style labels.

The molecules are the first compounds of the NCI open database that RDKit ships
(rdkit/Data/NCI/first_5K.smi). Tox21's real labels cannot be downloaded on the project's machines,
so each of the 12 task columns is made here, deterministically, from RDKit substructures and
descriptors loosely tied to each assay's biology (phenols for the estrogen receptor, fused aromatics
for AhR, Michael acceptors for ARE, ...), about 12% of them left empty (missing) as in Tox21.
They are meant for exercising the pipeline, not for science. Run where RDKit is installed:

    python examples/dgl-tox21/data/make_sample.py      (inside sm-images/dgl-rdkit-cpu, say)
"""

import csv
import hashlib
import os
from pathlib import Path

from rdkit import Chem, RDConfig, RDLogger
from rdkit.Chem import Crippen, Descriptors, rdMolDescriptors

TASKS = ["NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma",
         "SR-ARE", "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53"]
MOLECULES = 500
MISSING = 0.12
SMARTS = {name: Chem.MolFromSmarts(s) for name, s in {
    "phenol": "c[OX2H]", "acid": "[CX3](=O)[OX2H1,OX1-]", "nitro": "[N+](=O)[O-]",
    "arom_amine": "c[NX3;H2,H1;!$(NC=O)]", "halogen": "[Cl,Br,I]", "michael": "[CX3]=[CX3][CX3]=O",
    "quinone": "O=[#6]1[#6]=,:[#6][#6](=O)[#6]=,:[#6]1", "epoxide": "C1OC1", "azole": "[nr5]",
    "fused_arom": "[a;R2]", "alkyl_halide": "[CX4][Cl,Br,I]", "thiol": "[SX2H]",
    "metal": "[Hg,Pb,Cd,As,Sn,Cu,Zn,Ni,Co,Cr,Sb,Tl]", "ketone": "[#6][CX3](=O)[#6]",
}.items()}


def unit(*parts):
    """A deterministic number in [0, 1) from the parts: reproducible 'noise' and missingness."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def features(mol):
    f = {name: len(mol.GetSubstructMatches(p)) for name, p in SMARTS.items()}
    f.update(logp=Crippen.MolLogP(mol), tpsa=rdMolDescriptors.CalcTPSA(mol),
             rings=rdMolDescriptors.CalcNumRings(mol), arom=rdMolDescriptors.CalcNumAromaticRings(mol),
             heavy=mol.GetNumHeavyAtoms(), fsp3=rdMolDescriptors.CalcFractionCSP3(mol),
             charge=sum(abs(a.GetFormalCharge()) for a in mol.GetAtoms()), mw=Descriptors.MolWt(mol))
    return f


def scores(f):
    """One score per task: higher means more likely 'active'."""
    lipo = max(min(f["logp"], 6), -2)
    steroid = 1.0 if f["rings"] >= 4 and f["fsp3"] > 0.5 else 0.0
    return {
        "NR-AR": 2.5 * steroid + 0.3 * lipo + 0.5 * (f["ketone"] > 0),
        "NR-AR-LBD": 2.5 * steroid + 0.4 * lipo - 0.01 * f["tpsa"],
        "NR-AhR": 1.2 * min(f["fused_arom"], 4) + 0.6 * f["arom"] + 0.5 * (f["halogen"] > 0),
        "NR-Aromatase": 2.0 * (f["azole"] > 0) + 0.4 * lipo + 0.3 * f["arom"],
        "NR-ER": 2.0 * (f["phenol"] > 0) + 0.3 * lipo + 0.3 * f["arom"],
        "NR-ER-LBD": 2.0 * (f["phenol"] > 0) + 1.0 * steroid + 0.4 * lipo,
        "NR-PPAR-gamma": 2.0 * (f["acid"] > 0) + 0.5 * lipo + 0.2 * f["arom"],
        "SR-ARE": 2.0 * (f["michael"] + f["quinone"] > 0) + 1.0 * (f["thiol"] > 0) + 0.2 * lipo,
        "SR-ATAD5": 2.0 * (f["nitro"] > 0) + 1.5 * (f["epoxide"] + f["alkyl_halide"] > 0) + 0.3 * f["arom"],
        "SR-HSE": 2.5 * (f["metal"] > 0) + 0.5 * min(f["halogen"], 3) + 0.2 * lipo,
        "SR-MMP": 0.8 * lipo + 1.5 * (f["charge"] > 0) + 1.0 * (f["quinone"] > 0),
        "SR-p53": 1.5 * (f["arom_amine"] > 0) + 1.5 * (f["nitro"] > 0) + 0.8 * min(f["fused_arom"], 3) / 3,
    }


def molecules():
    RDLogger.DisableLog("rdApp.*")
    source = Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"
    seen = set()
    for line in source.read_text().splitlines():
        mol = Chem.MolFromSmiles(line.split()[0]) if line.strip() else None
        if mol is None or not 5 <= mol.GetNumHeavyAtoms() <= 60:
            continue
        smiles = Chem.MolToSmiles(mol)
        if smiles not in seen:
            seen.add(smiles)
            yield smiles, mol
        if len(seen) == MOLECULES:
            return


def main():
    rows = [(smiles, scores(features(mol))) for smiles, mol in molecules()]
    labels = {}
    for i, task in enumerate(TASKS):
        noisy = [s[task] + 1.5 * unit(smiles, task, "noise") for smiles, s in rows]
        rate = 0.08 + 0.02 * (i % 6)  # 8% to 18% actives, like Tox21's imbalance
        cut = sorted(noisy, reverse=True)[int(rate * len(rows))]
        labels[task] = ["" if unit(smiles, task, "missing") < MISSING else int(v > cut)
                        for (smiles, _), v in zip(rows, noisy)]
    out = Path(os.environ.get("OUT", Path(__file__).with_name("tox21_sample.csv")))
    with out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["smiles", *TASKS])
        for j, (smiles, _) in enumerate(rows):
            writer.writerow([smiles, *(labels[t][j] for t in TASKS)])
    print(f"wrote {out}: {len(rows)} molecules, {len(TASKS)} tasks")


if __name__ == "__main__":
    main()
