"""IGNN and CGS node classification on Cora / CiteSeer (standard Planetoid split), next to GCN.

Each model is trained for a fixed number of epochs with Adam; the test accuracy at the epoch
of best validation accuracy is reported, mean ± std over seeds. GCN (2 layers, 16 hidden,
Kipf & Welling 2017: 81.5 on Cora, 70.3 on CiteSeer) is trained in the same script.

    .venv/bin/python examples/implicit_node_classification.py               # Cora+CiteSeer, 5 seeds
    .venv/bin/python examples/implicit_node_classification.py --fast        # smoke test
    .venv/bin/python examples/implicit_node_classification.py \
        --json benchmarks/results/implicit_node_classification.json          # + per-run records
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import GCNConv
from tqdm import tqdm

from dyngraph.datasets import CiteSeer, Cora
from dyngraph.nn.implicit import CGS, IGNN

PUBLISHED_GCN = {"cora": 81.5, "citeseer": 70.3}


class IGNNNet(nn.Module):
    """dropout → IGNN (implicit, κ-projected) → dropout → linear read-out."""

    def __init__(self, in_ch: int, hidden: int, out_ch: int, dropout: float = 0.5,
                 kappa: float = 0.9) -> None:
        super().__init__()
        self.dropout = dropout
        self.ignn = IGNN(in_ch, hidden, kappa=kappa, rtol=1e-5, max_iter=300,
                         raise_on_failure=False)
        self.out = nn.Linear(hidden, out_ch)

    def forward(self, x, edge_index):
        x = F.dropout(x, self.dropout, self.training)
        h = self.ignn(x, edge_index)
        return self.out(F.dropout(h, self.dropout, self.training))


class CGSNet(nn.Module):
    """dropout → linear encoder → CGS (sparse transitions, direct solve) with its decoder."""

    def __init__(self, in_ch: int, hidden: int, out_ch: int, dropout: float = 0.5,
                 gamma: float = 0.9) -> None:
        super().__init__()
        self.dropout = dropout
        self.enc = nn.Linear(in_ch, hidden)
        self.cgs = CGS(hidden, hidden // 4, out_ch, num_heads=4, gamma=gamma,
                       mlp_channels=hidden, solver="auto")

    def forward(self, x, edge_index):
        x = F.dropout(x, self.dropout, self.training)
        h = F.dropout(torch.relu(self.enc(x)), self.dropout, self.training)
        return self.cgs(h, edge_index)


class GCN(nn.Module):
    def __init__(self, in_ch: int, hidden: int, out_ch: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.c1, self.c2, self.dropout = GCNConv(in_ch, hidden), GCNConv(hidden, out_ch), dropout

    def forward(self, x, edge_index):
        x = F.dropout(x, self.dropout, self.training)
        x = F.dropout(torch.relu(self.c1(x, edge_index)), self.dropout, self.training)
        return self.c2(x, edge_index)


def build(name: str, in_ch: int, out_ch: int) -> nn.Module:
    if name == "gcn":
        return GCN(in_ch, 16, out_ch)
    if name == "ignn":
        return IGNNNet(in_ch, 64, out_ch)
    if name == "cgs":
        return CGSNet(in_ch, 64, out_ch)
    raise ValueError(name)


def run(data, model_name: str, seed: int, epochs: int) -> tuple[float, float]:
    torch.manual_seed(seed)
    model = build(model_name, data.num_features, int(data.y.max()) + 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    best_val, test_at_best = -1.0, 0.0
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        opt.zero_grad()
        out = model(data.x, data.edge_index)
        F.cross_entropy(out[data.train_mask], data.y[data.train_mask]).backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            pred = model(data.x, data.edge_index).argmax(1)
        val = float((pred[data.val_mask] == data.y[data.val_mask]).float().mean())
        if val > best_val:
            best_val = val
            test_at_best = float((pred[data.test_mask] == data.y[data.test_mask]).float().mean())
    return 100 * test_at_best, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fast", action="store_true")
    p.add_argument("--datasets", default="cora,citeseer")
    p.add_argument("--models", default="gcn,ignn,cgs")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="write one record per (dataset, model, seed)")
    args = p.parse_args(argv)
    if args.fast:
        args.datasets, args.seeds, args.epochs = "cora", 1, 3
    torch.set_num_threads(args.threads)
    loaders = {"cora": Cora, "citeseer": CiteSeer}
    results: dict = {}
    records: list[dict] = []
    for ds in args.datasets.split(","):
        data = loaders[ds]()
        for m in args.models.split(","):
            accs, secs = [], []
            for seed in tqdm(range(args.seeds), desc=f"{ds}/{m}"):
                acc, sec = run(data, m, seed, args.epochs)
                accs.append(acc)
                secs.append(sec)
                records.append(dict(dataset=ds, model=m, seed=seed, test_acc=acc / 100,
                                    seconds=sec, epochs=args.epochs))
            results[(ds, m)] = (float(np.mean(accs)), float(np.std(accs)), float(np.mean(secs)))
            tqdm.write(f"{ds}/{m}: {results[(ds, m)][0]:.1f} ± {results[(ds, m)][1]:.1f} "
                       f"(seeds: {', '.join(f'{a:.1f}' for a in accs)})")
    print(f"\n{'dataset':10s} {'model':6s} {'test acc (mean ± std)':>24s} {'s/run':>7s}")
    for (ds, m), (mu, sd, sec) in results.items():
        print(f"{ds:10s} {m:6s} {mu:17.1f} ± {sd:4.1f} {sec:7.1f}")
    for ds in args.datasets.split(","):
        print(f"published GCN on {ds}: {PUBLISHED_GCN[ds]}")
    if args.json:
        cmd = "python examples/implicit_node_classification.py " + " ".join(
            sys.argv[1:] if argv is None else argv)
        with open(args.json, "w") as fh:
            json.dump(dict(command=cmd, machine=f"{platform.machine()} CPU, "
                           f"{torch.get_num_threads()} thread(s), torch {torch.__version__}",
                           published_gcn=PUBLISHED_GCN, records=records), fh, indent=1)
    return results


if __name__ == "__main__":
    main()
