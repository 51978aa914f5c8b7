#!/usr/bin/env python3
"""Tox21 toxicity prediction: a graph convolutional network (DGL) over RDKit molecular graphs.

Reads a Tox21-format CSV (a `smiles` column and the 12 task columns, 1/0, empty = missing) from a
data channel (`train`, or the only channel besides `training-code`, or `--data-channel NAME`), else
the sample shipped beside this script (data/tox21_sample.csv: real molecules, synthetic labels).
Writes model.pt and metrics.json (ROC-AUC per task and their mean on the validation split) to
SM_MODEL_DIR. SageMaker runs it as the `entrypoint` hyperparameter names it, every other
hyperparameter arriving as `--key value`:

    hyperparameters={"entrypoint": "main.py", "epochs": 30, "lr": 0.001}
    fit({"training-code": "file://examples/dgl-tox21", "train": "file://my-tox21-csv-folder"})
"""

import argparse
import json
import logging
import os
import random
import sys
import time
from pathlib import Path

import dgl
import dgl.function as fn
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from rdkit import Chem, RDLogger
from torch import nn

TASKS = ["NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma",
         "SR-ARE", "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53"]
SAMPLE = Path(__file__).resolve().parent / "data" / "tox21_sample.csv"
CODE_CHANNEL = "training-code"
SPLIT_TRIES = 200
log = logging.getLogger("dgl-tox21")


# --- hyperparameters ---------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    add = p.add_argument
    add("--epochs", type=int, default=40, help="most epochs to train")
    add("--lr", type=float, default=1e-3, help="Adam learning rate")
    add("--batch-size", "--batch_size", type=int, default=64, help="molecules per batch")
    add("--patience", type=int, default=8, help="epochs without a better validation ROC-AUC before stopping")
    add("--hidden-size", "--hidden_size", type=int, default=64, help="width of every graph layer")
    add("--num-layers", "--num_layers", type=int, default=3, help="graph convolution layers")
    add("--dropout", type=float, default=0.1)
    add("--weight-decay", "--weight_decay", type=float, default=0.0)
    add("--val-fraction", "--val_fraction", type=float, default=0.2, help="share of molecules held out")
    add("--seed", type=int, default=0)
    add("--data-channel", "--data_channel", default=None, help="the channel holding the CSV")
    add("--model-dir", "--model_dir", default=os.environ.get("SM_MODEL_DIR", "model"))
    args, unknown = p.parse_known_args(argv)
    unknown = [a for a in unknown if a.startswith("--") and not a.startswith("--sagemaker_")]
    if unknown:
        p.error(f"unknown hyperparameter(s) {', '.join(unknown)}")
    checks = {"epochs": args.epochs >= 1, "lr": args.lr > 0, "batch-size": args.batch_size >= 1,
              "patience": args.patience >= 1, "hidden-size": args.hidden_size >= 1,
              "num-layers": args.num_layers >= 1, "dropout": 0 <= args.dropout < 1,
              "weight-decay": args.weight_decay >= 0, "val-fraction": 0 < args.val_fraction < 1}
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        values = [f"--{name} {getattr(args, name.replace('-', '_'))}" for name in bad]
        p.error(f"out of range: {', '.join(values)}")
    return args


# --- data --------------------------------------------------------------------------------------

def data_files(args):
    """The CSV files to read and where they came from."""
    channels = [c for c in json.loads(os.environ.get("SM_CHANNELS", "[]")) if c != CODE_CHANNEL]
    name = args.data_channel
    if name is None and channels:
        if "train" in channels or len(channels) == 1:
            name = "train" if "train" in channels else channels[0]
        else:
            sys.exit(f"several data channels ({', '.join(sorted(channels))}): name one with --data-channel")
    if name is None:
        return [SAMPLE], f"the sample shipped with the example ({SAMPLE.name}: real molecules, synthetic labels)"
    folder = Path(os.environ.get("SM_INPUT_DATA_DIR", "/opt/ml/input/data")) / name
    if not folder.is_dir():
        sys.exit(f"data channel '{name}' was not given (channels: {', '.join(channels) or 'none'})")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name.endswith((".csv", ".csv.gz")))
    if not files:
        sys.exit(f"data channel '{name}' holds no .csv or .csv.gz file")
    return files, f"channel '{name}' ({len(files)} file(s))"


def read_table(files):
    frames = []
    for path in files:
        frame = pd.read_csv(path, dtype={"smiles": str})
        missing = [c for c in ["smiles", *TASKS] if c not in frame.columns]
        if missing:
            sys.exit(f"{path.name} lacks column(s) {', '.join(missing)}: a Tox21 CSV has 'smiles' and the 12 tasks")
        frames.append(frame[["smiles", *TASKS]])
    table = pd.concat(frames, ignore_index=True)
    labels = table[TASKS].apply(pd.to_numeric, errors="coerce")
    bad = labels.notna() & ~labels.isin([0, 1]) | labels.isna() & table[TASKS].notna()
    if bad.any().any():
        row, task = next((r, t) for t in TASKS for r in table.index[bad[t]])
        sys.exit(f"label {table.at[row, task]!r} in column {task} (row {row + 2}) is not 0, 1 or empty")
    return table["smiles"].tolist(), labels.to_numpy(dtype=np.float32)


# --- featurization: atoms and bonds as RDKit sees them ------------------------------------------

ELEMENTS = ["C", "N", "O", "S", "F", "Si", "P", "Cl", "Br", "Mg", "Na", "Ca", "Fe", "As", "Al", "I", "B",
            "V", "K", "Tl", "Yb", "Sb", "Sn", "Ag", "Pd", "Co", "Se", "Ti", "Zn", "H", "Li", "Ge", "Cu",
            "Au", "Ni", "Cd", "In", "Mn", "Zr", "Cr", "Pt", "Hg", "Pb"]
HYBRIDIZATIONS = [Chem.HybridizationType.SP, Chem.HybridizationType.SP2, Chem.HybridizationType.SP3,
                  Chem.HybridizationType.SP3D, Chem.HybridizationType.SP3D2]
BOND_TYPES = [Chem.BondType.SINGLE, Chem.BondType.DOUBLE, Chem.BondType.TRIPLE, Chem.BondType.AROMATIC]


def one_hot(value, choices):
    """One-hot over `choices` plus a last slot for anything else."""
    return [value == c for c in choices] + [value not in choices]


def atom_features(atom):
    return (one_hot(atom.GetSymbol(), ELEMENTS) + one_hot(atom.GetDegree(), range(6))
            + one_hot(atom.GetFormalCharge(), range(-2, 3)) + one_hot(atom.GetHybridization(), HYBRIDIZATIONS)
            + one_hot(atom.GetTotalNumHs(), range(5)) + [atom.GetIsAromatic(), atom.IsInRing()])


def bond_features(bond):
    return one_hot(bond.GetBondType(), BOND_TYPES) + [bond.GetIsConjugated(), bond.IsInRing()]


ATOM_DIM = len(atom_features(Chem.MolFromSmiles("C").GetAtomWithIdx(0)))
BOND_DIM = len(bond_features(Chem.MolFromSmiles("CC").GetBondWithIdx(0)))


def mol_to_graph(mol):
    """A DGL graph: one node per atom, two directed edges per bond, features in 'h' and 'e'."""
    src, dst, bonds = [], [], []
    for bond in mol.GetBonds():
        i, j, feats = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx(), bond_features(bond)
        src += [i, j]
        dst += [j, i]
        bonds += [feats, feats]
    g = dgl.graph((torch.tensor(src, dtype=torch.int64), torch.tensor(dst, dtype=torch.int64)),
                  num_nodes=mol.GetNumAtoms())
    g.ndata["h"] = torch.tensor([atom_features(a) for a in mol.GetAtoms()], dtype=torch.float32)
    g.edata["e"] = torch.tensor(bonds, dtype=torch.float32).reshape(-1, BOND_DIM)
    return g


def featurize(smiles, labels):
    """Graphs for the SMILES RDKit can parse; the others are counted, logged and skipped."""
    RDLogger.DisableLog("rdApp.*")  # one summary line below instead of RDKit's line per molecule
    graphs, kept, skipped = [], [], []
    for row, text in enumerate(smiles):
        mol = Chem.MolFromSmiles(text) if isinstance(text, str) and text.strip() else None
        if mol is None or mol.GetNumAtoms() == 0:
            skipped.append((row, text))
            continue
        graphs.append(mol_to_graph(mol))
        kept.append(row)
    if skipped:
        examples = ", ".join(f"row {r + 2}: {t!r}" for r, t in skipped[:5])
        log.warning("skipped %d of %d molecules whose SMILES RDKit cannot parse (%s%s)", len(skipped),
                    len(smiles), examples, ", ..." if len(skipped) > 5 else "")
    else:
        log.info("all %d SMILES parsed", len(smiles))
    return graphs, labels[kept], len(skipped)


def split(labels, fraction, seed):
    """Random train/validation indices; tries seeds until every task has both classes in validation."""
    n = len(labels)
    n_val = min(max(1, round(n * fraction)), n - 1)
    rng = np.random.default_rng(seed)
    for _ in range(SPLIT_TRIES):
        order = rng.permutation(n)
        val = labels[order[:n_val]]
        if all(((val[:, t] == 0).any() and (val[:, t] == 1).any()) for t in range(len(TASKS))):
            return order[n_val:], order[:n_val]
    log.warning("no split in %d tries holds both classes of every task in validation: "
                "their ROC-AUC is reported as null", SPLIT_TRIES)
    return order[n_val:], order[:n_val]


# --- the model -----------------------------------------------------------------------------------

class BondAwareGraphConv(nn.Module):
    """A GCN layer whose messages carry the bond between two atoms:
    h_i' = ReLU(LayerNorm(W_s h_i + sum_j c_ij (W h_j + W_e e_ij))), c_ij = 1/sqrt(d_i d_j) as in GCN."""

    def __init__(self, in_dim, out_dim, dropout):
        super().__init__()
        self.neighbour = nn.Linear(in_dim, out_dim)
        self.self_loop = nn.Linear(in_dim, out_dim)
        self.bond = nn.Linear(BOND_DIM, out_dim, bias=False)
        self.norm = nn.LayerNorm(out_dim)
        self.dropout = nn.Dropout(dropout)
        self.residual = in_dim == out_dim

    def forward(self, g, h):
        with g.local_scope():
            inv_sqrt_degree = g.in_degrees().float().clamp(min=1).pow(-0.5)
            src, dst = g.edges()
            g.ndata["n"] = self.neighbour(h)
            g.edata["b"] = self.bond(g.edata["e"])
            g.apply_edges(fn.u_add_e("n", "b", "m"))
            g.edata["m"] = g.edata["m"] * (inv_sqrt_degree[src] * inv_sqrt_degree[dst]).unsqueeze(1)
            g.update_all(fn.copy_e("m", "m"), fn.sum("m", "agg"))
            out = self.dropout(F.relu(self.norm(self.self_loop(h) + g.ndata["agg"])))
        return out + h if self.residual else out


class Tox21GCN(nn.Module):
    """Graph layers, then a mean-and-max readout over each molecule's atoms, then one logit per task."""

    def __init__(self, hidden, layers, dropout):
        super().__init__()
        dims = [ATOM_DIM] + [hidden] * layers
        self.convs = nn.ModuleList(BondAwareGraphConv(a, b, dropout) for a, b in zip(dims, dims[1:]))
        self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, len(TASKS)))

    def forward(self, g):
        h = g.ndata["h"]
        for conv in self.convs:
            h = conv(g, h)
        with g.local_scope():
            g.ndata["out"] = h
            readout = torch.cat([dgl.mean_nodes(g, "out"), dgl.max_nodes(g, "out")], dim=1)
        return self.head(readout)


def masked_bce(logits, labels):
    """Binary cross-entropy over the labels that are present (NaN = missing, ignored)."""
    present = ~torch.isnan(labels)
    losses = F.binary_cross_entropy_with_logits(logits, torch.nan_to_num(labels), reduction="none")
    return (losses * present).sum() / present.sum().clamp(min=1)


# --- metrics -------------------------------------------------------------------------------------

def roc_auc(y, score):
    """ROC-AUC (the Mann-Whitney U statistic, ties averaged), or None when a class is absent."""
    positive = y == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = pd.Series(score).rank().to_numpy()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def evaluate(model, graphs, labels, batch_size, device):
    model.eval()
    scores, losses = [], []
    with torch.no_grad():
        for start in range(0, len(graphs), batch_size):
            g = dgl.batch(graphs[start:start + batch_size]).to(device)
            y = torch.from_numpy(labels[start:start + batch_size]).to(device)
            logits = model(g)
            losses.append(masked_bce(logits, y).item() * len(y))
            scores.append(torch.sigmoid(logits).cpu().numpy())
    scores = np.concatenate(scores)
    per_task, undefined = {}, {}
    for t, task in enumerate(TASKS):
        present = ~np.isnan(labels[:, t])
        per_task[task] = roc_auc(labels[present, t], scores[present, t])
        if per_task[task] is None:
            undefined[task] = (f"validation holds {int(present.sum())} labelled molecule(s) of one class only "
                               f"({int(np.nansum(labels[:, t]))} positive)")
    defined = [v for v in per_task.values() if v is not None]
    mean = float(np.mean(defined)) if defined else None
    return sum(losses) / len(graphs), per_task, mean, undefined


# --- training ------------------------------------------------------------------------------------

def pick_device():
    """CUDA when torch sees a GPU and this DGL build can put a graph on it; else the CPU, with why."""
    if not torch.cuda.is_available():
        return torch.device("cpu"), "no CUDA device visible to torch"
    try:
        dgl.graph(([0], [1])).to("cuda")
    except Exception as e:  # noqa: BLE001 - a CPU-only DGL raises its own error type here
        return torch.device("cpu"), (f"a CUDA device is present but this DGL build cannot use it "
                                     f"({type(e).__name__}: {' '.join(str(e).split())[:160]})")
    return torch.device("cuda"), f"CUDA device {torch.cuda.get_device_name(0)}"


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    dgl.seed(seed)


def train(args, graphs, labels, device):
    train_idx, val_idx = split(labels, args.val_fraction, args.seed)
    train_graphs, train_y = [graphs[i] for i in train_idx], labels[train_idx]
    val_graphs, val_y = [graphs[i] for i in val_idx], labels[val_idx]
    log.info("split: %d training, %d validation molecules", len(train_idx), len(val_idx))
    model = Tox21GCN(args.hidden_size, args.num_layers, args.dropout).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    best = {"score": -np.inf, "epoch": 0, "state": None, "result": None}
    epoch, rng = 0, np.random.default_rng(args.seed)
    for epoch in range(1, args.epochs + 1):
        start, model_loss = time.monotonic(), 0.0
        model.train()
        order = rng.permutation(len(train_graphs))
        for first in range(0, len(order), args.batch_size):
            batch = order[first:first + args.batch_size]
            g = dgl.batch([train_graphs[i] for i in batch]).to(device)
            loss = masked_bce(model(g), torch.from_numpy(train_y[batch]).to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            model_loss += loss.item() * len(batch)
        result = evaluate(model, val_graphs, val_y, args.batch_size, device)
        val_loss, _, mean_auc, _ = result
        score = mean_auc if mean_auc is not None else -val_loss
        log.info("epoch %d/%d train_loss=%.4f val_loss=%.4f val_mean_roc_auc=%s (%.1f s)", epoch, args.epochs,
                 model_loss / len(train_graphs), val_loss, "n/a" if mean_auc is None else f"{mean_auc:.4f}",
                 time.monotonic() - start)
        if score > best["score"]:
            best = {"score": score, "epoch": epoch, "result": result,
                    "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}
        elif epoch - best["epoch"] >= args.patience:
            log.info("early stop: no better validation ROC-AUC for %d epochs (best epoch %d)",
                     args.patience, best["epoch"])
            break
    return best, epoch, len(train_idx), len(val_idx)


def save(args, best, epochs_run, counts, source, device):
    out = Path(args.model_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = {"atom_dim": ATOM_DIM, "bond_dim": BOND_DIM, "hidden_size": args.hidden_size,
              "num_layers": args.num_layers, "dropout": args.dropout, "tasks": TASKS, "elements": ELEMENTS}
    torch.save({"state_dict": best["state"], "config": config}, out / "model.pt")
    val_loss, per_task, mean, undefined = best["result"]
    metrics = {"roc_auc_per_task": per_task, "mean_roc_auc": mean, "undefined_roc_auc": undefined,
               "validation_loss": val_loss, "best_epoch": best["epoch"], "epochs_run": epochs_run,
               "molecules": counts, "data": source, "device": str(device),
               "hyperparameters": {k: v for k, v in vars(args).items() if k != "model_dir"}}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    for task in TASKS:
        value = per_task[task]
        log.info("  %-14s ROC-AUC %s", task, "null (" + undefined[task] + ")" if value is None else f"{value:.4f}")
    log.info("mean validation ROC-AUC %s (best epoch %d); wrote %s and %s",
             "n/a" if mean is None else f"{mean:.4f}", best["epoch"], out / "model.pt", out / "metrics.json")


def main(argv=None):
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s [dgl-tox21] %(message)s")
    args = parse_args(sys.argv[1:] if argv is None else argv)
    seed_everything(args.seed)
    device, why = pick_device()
    log.info("device: %s (%s); torch %s, dgl %s", device, why, torch.__version__, dgl.__version__)
    files, source = data_files(args)
    smiles, labels = read_table(files)
    log.info("read %d molecules from %s", len(smiles), source)
    graphs, labels, skipped = featurize(smiles, labels)
    if len(graphs) < 10:
        sys.exit(f"only {len(graphs)} molecule(s) could be parsed ({skipped} skipped): too few to train on")
    best, epochs_run, n_train, n_val = train(args, graphs, labels, device)
    counts = {"read": len(smiles), "skipped_invalid_smiles": skipped, "train": n_train, "validation": n_val}
    save(args, best, epochs_run, counts, source, device)


if __name__ == "__main__":
    main()
