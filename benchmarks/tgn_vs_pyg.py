"""TGN: dyngraph vs PyG's own recipe, same data, same process, same negatives.

PyG side = ``examples/tgn.py`` of PyG: ``TGNMemory`` (IdentityMessage, LastAggregator) +
``LastNeighborLoader`` + a ``TransformerConv`` graph-attention embedding + the MLP link
predictor; memory/time/embedding 100, 10 neighbours, 2 heads, dropout 0.1, batch 200.
dyngraph side = ``dyngraph.nn.memory.TGN`` with the same sizes, trained by dyngraph's own
trainer (``train_epoch``; fused Adam from ``make_optimizer``; ``--fused-adam-pyg`` gives PyG's
recipe the same optimizer).

Both train on the same chronological split with the same random negatives, in alternation
(epoch by epoch, so machine load affects both alike), and are tested once at the end
(AP/AUC with one random negative per event, over the whole test split). Reported: training
events/second (median over epochs; wall clock, and per CPU second of the training thread --
the latter is steadier when other jobs share the cores) and test AP. Timings on a shared
machine are noisy.

    python benchmarks/tgn_vs_pyg.py --dataset uci --epochs 10
    python benchmarks/tgn_vs_pyg.py --dataset wikipedia --epochs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from torch_geometric.nn import TransformerConv
from torch_geometric.nn.models.tgn import (
    IdentityMessage,
    LastAggregator,
    LastNeighborLoader,
    TGNMemory,
)

from dyngraph.data import RandomNegativeSampler, TemporalNeighborIndex
from dyngraph.datasets import get_events
from dyngraph.metrics import average_precision, roc_auc
from dyngraph.train.streaming import (
    StreamingConfig,
    build_model,
    evaluate_stream,
    make_optimizer,
    train_epoch,
)


class GraphAttentionEmbedding(torch.nn.Module):
    """PyG's examples/tgn.py embedding."""

    def __init__(self, in_channels, out_channels, msg_dim, time_enc):
        super().__init__()
        self.time_enc = time_enc
        edge_dim = msg_dim + time_enc.out_channels
        self.conv = TransformerConv(in_channels, out_channels // 2, heads=2, dropout=0.1,
                                    edge_dim=edge_dim)

    def forward(self, x, last_update, edge_index, t, msg):
        rel_t = last_update[edge_index[0]] - t
        rel_t_enc = self.time_enc(rel_t.to(x.dtype))
        edge_attr = torch.cat([rel_t_enc, msg], dim=-1)
        return self.conv(x, edge_index, edge_attr)


class LinkPredictor(torch.nn.Module):
    """PyG's examples/tgn.py decoder."""

    def __init__(self, in_channels):
        super().__init__()
        self.lin_src = torch.nn.Linear(in_channels, in_channels)
        self.lin_dst = torch.nn.Linear(in_channels, in_channels)
        self.lin_final = torch.nn.Linear(in_channels, 1)

    def forward(self, z_src, z_dst):
        return self.lin_final((self.lin_src(z_src) + self.lin_dst(z_dst)).relu())


class PyGTGN:
    def __init__(self, num_nodes, msg_dim, lr, dim=100, fused_adam=False):
        self.cursor = 0
        self.memory = TGNMemory(num_nodes, msg_dim, dim, dim,
                                message_module=IdentityMessage(msg_dim, dim, dim),
                                aggregator_module=LastAggregator())
        self.gnn = GraphAttentionEmbedding(dim, dim, msg_dim, self.memory.time_enc)
        self.link_pred = LinkPredictor(dim)
        self.loader = LastNeighborLoader(num_nodes, size=10)
        params = (set(self.memory.parameters()) | set(self.gnn.parameters())
                  | set(self.link_pred.parameters()))
        # the recipe's plain Adam; --fused-adam-pyg gives it dyngraph's fused Adam instead
        self.opt = torch.optim.Adam(params, lr=lr, fused=True if fused_adam else None)
        self.assoc = torch.empty(num_nodes, dtype=torch.long)

    def _mode(self, train):
        for m in (self.memory, self.gnn, self.link_pred):
            m.train(train)

    def _scores(self, batch, neg, msg_all, t_all):
        n_id = torch.cat([batch.src, batch.dst, neg]).unique()
        n_id, edge_index, e_id = self.loader(n_id)
        self.assoc[n_id] = torch.arange(n_id.size(0))
        z, last_update = self.memory(n_id)
        z = self.gnn(z, last_update, edge_index, t_all[e_id], msg_all[e_id])
        src = z[self.assoc[batch.src]]
        pos = self.link_pred(src, z[self.assoc[batch.dst]]).view(-1)
        negs = self.link_pred(src, z[self.assoc[neg]]).view(-1)
        return pos, negs

    def _insert(self, batch, msg_all):
        e = torch.arange(self.cursor, self.cursor + batch.num_events)
        self.cursor += batch.num_events
        self.memory.update_state(batch.src, batch.dst, batch.t.long(), msg_all[e])
        self.loader.insert(batch.src, batch.dst)

    def train_epoch(self, stream, sampler, msg_all, t_all, bs):
        self._mode(True)
        self.memory.reset_state()
        self.loader.reset_state()
        self.cursor = 0
        start, cpu = time.perf_counter(), time.thread_time()
        for batch in stream.batches(bs):
            neg = sampler.sample(batch, 1).view(-1)
            self.opt.zero_grad()
            pos, negs = self._scores(batch, neg, msg_all, t_all)
            loss = (F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos))
                    + F.binary_cross_entropy_with_logits(negs, torch.zeros_like(negs)))
            self._insert(batch, msg_all)
            loss.backward()
            self.opt.step()
            self.memory.detach()
        return (stream.num_events / (time.perf_counter() - start),
                stream.num_events / (time.thread_time() - cpu))

    @torch.no_grad()
    def evaluate(self, stream, sampler, msg_all, t_all, bs):
        self._mode(False)
        pos_all, neg_all = [], []
        for batch in stream.batches(bs):
            neg = sampler.sample(batch, 1).view(-1)
            pos, negs = self._scores(batch, neg, msg_all, t_all)
            pos_all.append(pos)
            neg_all.append(negs)
            self._insert(batch, msg_all)
        return _metrics(torch.cat(pos_all), torch.cat(neg_all))


def _metrics(pos, neg):
    s = torch.cat([pos, neg]).sigmoid().double()
    y = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)]).double()
    return {"ap": float(average_precision(s, y)), "auc": float(roc_auc(s, y))}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="uci")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=200)
    ap.add_argument("--lr", type=float, default=1e-4, help="PyG recipe's 1e-4 for both")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-events", type=int, default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--fused-adam-pyg", action="store_true",
                    help="give PyG's recipe the fused Adam dyngraph's trainer uses (fairness "
                         "check: the optimizer step is then the same code on both sides)")
    ap.add_argument("--dedup", action="store_true",
                    help="also run dyngraph with dedup_queries (one embedding per node per batch)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    stream = get_events(args.dataset)
    if args.max_events:
        stream = stream[: args.max_events]
    split = stream.split(seed=args.seed)
    n = stream.num_nodes
    # PyG's LastNeighborLoader numbers events in insertion order (train, then val, then
    # test); its TGNMemory needs a non-empty raw message, so structure-only data gets one
    # zero column (dyngraph needs none)
    t_all = torch.cat([split.train.t, split.val.t, split.test.t]).long()
    msg_all = torch.zeros(t_all.numel(), 1)
    if stream.msg_dim:
        msg_all = torch.cat([split.train.msg, split.val.msg, split.test.msg])

    torch.manual_seed(args.seed)
    pyg = PyGTGN(n, 1, args.lr, fused_adam=args.fused_adam_pyg)
    cfg = StreamingConfig(lr=args.lr, batch_size=args.batch_size, progress=False,
                          seed=args.seed)
    variants = {"dyngraph": False}  # name -> dedup_queries
    if args.dedup:
        variants["dyngraph-dedup"] = True
    models, opts = {}, {}
    for name, dedup in variants.items():
        torch.manual_seed(args.seed)
        models[name] = build_model(cfg, n, stream.msg_dim)
        models[name].dedup_queries = dedup
        opts[name] = make_optimizer(models[name], args.lr)  # fused Adam
    train_index, full_index = TemporalNeighborIndex(split.train), TemporalNeighborIndex(split.full)
    pool = torch.unique(split.train.dst)
    eps = {"pyg": [], **{name: [] for name in variants}}  # wall-clock events/s
    cps = {"pyg": [], **{name: [] for name in variants}}  # events per CPU second
    for epoch in range(1, args.epochs + 1):
        s1 = RandomNegativeSampler(pool, seed=epoch)
        wall, cpu = pyg.train_epoch(split.train, s1, msg_all, t_all, args.batch_size)
        eps["pyg"].append(wall)
        cps["pyg"].append(cpu)
        line = f"epoch {epoch}: PyG {wall:,.0f} ev/s ({cpu:,.0f} per CPU s)"
        for name in variants:
            s2 = RandomNegativeSampler(pool, seed=epoch)
            c0 = time.thread_time()
            r = train_epoch(models[name], split.train, train_index, s2, opts[name],
                            args.batch_size)
            cpu = split.train.num_events / (time.thread_time() - c0)
            eps[name].append(r["events_per_s"])
            cps[name].append(cpu)
            line += f"  {name} {r['events_per_s']:,.0f} ev/s ({cpu:,.0f} per CPU s)"
        print(line, flush=True)

    pool_full = split.full.dst_pool()
    res = {}
    for name in eps:
        sv, st = RandomNegativeSampler(pool_full, seed=1), RandomNegativeSampler(pool_full, 2)
        if name == "pyg":
            pyg.evaluate(split.val, sv, msg_all, t_all, args.batch_size)
            test = pyg.evaluate(split.test, st, msg_all, t_all, args.batch_size)
        else:
            evaluate_stream(models[name], split.val, full_index, sv, args.batch_size)
            test = evaluate_stream(models[name], split.test, full_index, st, args.batch_size)
        res[name] = {"test_ap": test["ap"], "test_auc": test["auc"],
                     "train_events_per_s_median": statistics.median(eps[name]),
                     "train_events_per_s": eps[name],
                     "train_events_per_cpu_s_median": statistics.median(cps[name]),
                     "train_events_per_cpu_s": cps[name]}
    print(f"\n{args.dataset}: {args.epochs} epochs, batch {args.batch_size}, lr {args.lr}, "
          f"threads {args.threads}")
    base = res["pyg"]["train_events_per_s_median"]
    base_cpu = res["pyg"]["train_events_per_cpu_s_median"]
    for name, r in res.items():
        r["speed_ratio_vs_pyg"] = r["train_events_per_s_median"] / base
        r["cpu_speed_ratio_vs_pyg"] = r["train_events_per_cpu_s_median"] / base_cpu
        print(f"  {name:15s} test AP {r['test_ap']:.4f}  AUC {r['test_auc']:.4f}  "
              f"train {r['train_events_per_s_median']:,.0f} events/s (median), "
              f"{r['speed_ratio_vs_pyg']:.2f}x PyG; "
              f"{r['train_events_per_cpu_s_median']:,.0f} events/CPU-s, "
              f"{r['cpu_speed_ratio_vs_pyg']:.2f}x PyG")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": res}, f, indent=2)


if __name__ == "__main__":
    main()
