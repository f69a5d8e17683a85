"""dyngraph's EvolveGCN pipeline against the authors' own code (IBM/EvolveGCN), on UCI.

Not a speed benchmark: an equivalence check that needs a checkout of the authors' repository
(``git clone https://github.com/IBM/EvolveGCN``; nothing of it is copied into dyngraph). It
writes the bundled CollegeMsg stream in the KONECT layout their loader reads
(``opsahl-ucsocial.tar.bz2``), builds their link-prediction tasker with their UCI settings and
compares, step by step,

* the normalised adjacency ``D^-1/2 (A + I) D^-1/2`` and the one-hot degree features of every
  snapshot a training sample reads,
* the number of true edges each sample is trained on,
* the node embeddings of EvolveGCN-O and EvolveGCN-H after a window of 11 snapshots, with
  dyngraph's randomly initialised weights copied into the authors' modules (activations in
  eval mode, so RReLU is deterministic),
* the gradients of one training sample (the authors' pairs and class-weighted loss) with
  respect to every weight of the encoder and the pair classifier.

Measured here (2026-11-24, steps 30 and 61): adjacency within 1.2e-7, features and edge counts
identical; embeddings within 5e-9 (EGCN-O) and 3e-9 (EGCN-H); gradients within 2e-5 and 2e-4
of each tensor's largest entry (float32 rounding). What is left to differ is randomness: the
sampled non-edges, RReLU's slopes and the seeds.

``--log`` also summarises a training log of the authors' ``run_exp.py`` (the validation and
test MAP / MRR / edge-class F1 of every epoch it tested).

    python benchmarks/evolvegcn_vs_authors.py --authors-dir /path/to/EvolveGCN [--log run.log]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tarfile
import tempfile
from pathlib import Path

import torch

from dyngraph.datasets.files import data_file
from dyngraph.train.snapshot import PAPER_WINDOWS, SnapshotEncoder, _resolve_dataset, prepare_task

# the authors' parameters_uc_irv_mess_egcn_*.yaml, as far as the tasker reads them
_UCI = dict(
    uc_irc_args=dict(folder=None, tar_file="opsahl-ucsocial.tar.bz2",
                     edges_file="opsahl-ucsocial/out.opsahl-ucsocial", aggr_time=190080),
    use_2_hot_node_feats=False, use_1_hot_node_feats=True, adj_mat_time_window=1,
    num_hist_steps=10, negative_mult_training=50, negative_mult_test=100,
    smart_neg_sampling=True,
)


def _konect_tar(folder: Path) -> None:
    """CollegeMsg (``src dst time``) as KONECT's ``out.opsahl-ucsocial`` (two header lines,
    ``src dst weight time``), the file the authors' UCI loader opens."""
    src = data_file("temporal/CollegeMsg.txt")  # bundled copy, checksum-verified
    lines = ["% sym unweighted", "% 59835 1899 1899"]
    for row in src.read_text().split("\n"):
        if row.strip():
            s, d, t = row.split()
            lines.append(f"{s} {d} 1 {t}")
    inner = folder / "opsahl-ucsocial"
    inner.mkdir()
    (inner / "out.opsahl-ucsocial").write_text("\n".join(lines) + "\n")
    with tarfile.open(folder / "opsahl-ucsocial.tar.bz2", "w:bz2") as tar:
        tar.add(inner, arcname="opsahl-ucsocial")


def _dense(sp: dict, shape) -> torch.Tensor:
    return torch.sparse_coo_tensor(sp["idx"].t(), sp["vals"].float(), shape).to_dense()


def _their_inputs(s: dict, n: int, f: int) -> tuple[list, list, list]:
    """A tasker sample as the authors' models take it: adjacencies, features, node masks."""
    adjs = [torch.sparse_coo_tensor(a["idx"].t(), a["vals"], (n, n)).coalesce()
            for a in s["hist_adj_list"]]
    feats = [_dense(x, (n, f)) for x in s["hist_ndFeats_list"]]
    masks = [m.view(-1, 1) for m in s["node_mask_list"]]
    return adjs, feats, masks


def compare(authors_dir: str, steps: list[int]) -> dict:
    """Maximum differences between the authors' tasker / models and dyngraph's on UCI."""
    sys.path.insert(0, authors_dir)
    import egcn_h
    import egcn_o
    import link_pred_tasker
    import uc_irv_mess_dl
    import utils

    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        _konect_tar(Path(tmp))
        args = utils.Namespace({**_UCI, "uc_irc_args": {**_UCI["uc_irc_args"], "folder": tmp}})
        data = uc_irv_mess_dl.Uc_Irvine_Message_Dataset(args)
        tasker = link_pred_tasker.Link_Pred_Tasker(args, data)
    stream, _ = _resolve_dataset("uci")
    task = prepare_task(stream.to_snapshots(window=PAPER_WINDOWS["uci"]), "uci")
    n, f = task.num_nodes, task.num_features
    out["nodes"], out["features"] = (data.num_nodes, n), (tasker.feats_per_node, f)
    adj_diff, feat_same, edges_same, samples = 0.0, True, True, {}
    for t in steps:
        s = tasker.get_sample(t, test=False)
        for k, (a, x) in enumerate(zip(s["hist_adj_list"], s["hist_ndFeats_list"])):
            step = t - len(s["hist_adj_list"]) + 1 + k
            ours = task.adj[step].propagate(torch.eye(n))
            adj_diff = max(adj_diff, float((_dense(a, (n, n)) - ours).abs().max()))
            feat_same &= torch.equal(_dense(x, (n, f)), task.features(step))
        true_edges = int(s["label_sp"]["vals"].sum())
        edges_same &= true_edges == task.pos[t + 1].size(1)
        samples[t] = s
    out.update(adjacency_max_diff=adj_diff, features_equal=feat_same,
               true_edges_equal=edges_same)

    torch.manual_seed(0)
    for kind, module in (("evolvegcn-o", egcn_o), ("evolvegcn-h", egcn_h)):
        ours = SnapshotEncoder(kind, f, 100).eval()
        act = torch.nn.RReLU().eval()
        theirs = module.EGCN(utils.Namespace({"feats_per_node": f, "layer_1_feats": 100,
                                              "layer_2_feats": 100}), activation=act)
        with torch.no_grad():
            for mine, grcu in zip(ours.net.layers, theirs.GRCU_layers):
                grcu.GCN_init_weights.copy_(mine.initial_weight)
                cell = grcu.evolve_weights
                for i, gate in enumerate((cell.update, cell.reset, cell.htilda)):
                    gate.W.copy_(mine.cell.weight_x[i])
                    gate.U.copy_(mine.cell.weight_h[i])
                    gate.bias.copy_(mine.cell.bias[i])
                if hasattr(mine, "scorer"):
                    cell.choose_topk.scorer.copy_(mine.scorer.view(-1, 1))
            diff, scale = 0.0, 0.0
            for t, s in samples.items():
                h_theirs = theirs(*_their_inputs(s, n, f))
                h_ours = ours.window(task, t, 10)
                diff = max(diff, float((h_theirs - h_ours).abs().max()))
                scale = max(scale, float(h_ours.abs().max()))
        out[kind] = {"embedding_max_diff": diff, "embedding_max_abs": scale,
                     "gradient_max_rel_diff": _gradients(
                         ours, theirs, samples[steps[-1]], task, steps[-1])}
    return out


def _gradients(ours, theirs, s: dict, task, t: int) -> float:
    """One training sample of the authors' (their pairs: true edges + sampled non-edges, their
    class weights 0.1/0.9 and loss), through both pipelines from the same weights: the largest
    relative difference between the gradients of corresponding parameters."""
    import Cross_Entropy  # the authors' modules, on sys.path since compare()
    import models
    import utils

    from dyngraph.train.snapshot import PairClassifier

    n, f = task.num_nodes, task.num_features
    cls_args = utils.Namespace({"gcn_parameters": {"cls_feats": 100}})
    their_cls = models.Classifier(cls_args, in_features=200, out_features=2)
    our_cls = PairClassifier(100, 100)
    with torch.no_grad():
        our_cls.lin1.weight.copy_(their_cls.mlp[0].weight)
        our_cls.lin1.bias.copy_(their_cls.mlp[0].bias)
        our_cls.lin2.weight.copy_(their_cls.mlp[2].weight)
        our_cls.lin2.bias.copy_(their_cls.mlp[2].bias)
    loss_fn = Cross_Entropy.Cross_Entropy(
        utils.Namespace({"class_weights": [0.1, 0.9], "device": "cpu", "task": "link_pred"}),
        None)
    pairs, labels = s["label_sp"]["idx"].t(), s["label_sp"]["vals"].long()
    h = theirs(*_their_inputs(s, n, f))
    loss_fn(their_cls(torch.cat([h[pairs[0]], h[pairs[1]]], 1)), labels).backward()
    h = ours.window(task, t, 10)
    logits = our_cls(h, pairs[0], pairs[1])
    w = torch.tensor([0.1, 0.9])
    (torch.nn.functional.cross_entropy(logits, labels, weight=w, reduction="sum")
     / labels.numel()).backward()  # loss_norm="samples"
    their = []
    for grcu in theirs.GRCU_layers:
        cell = grcu.evolve_weights
        gates = (cell.update, cell.reset, cell.htilda)
        their += [grcu.GCN_init_weights.grad, *(g.W.grad for g in gates),
                  *(g.U.grad for g in gates), *(g.bias.grad for g in gates)]
    mine = _per_gate(ours)
    mine += [our_cls.lin1.weight.grad, our_cls.lin2.weight.grad]
    their += [their_cls.mlp[0].weight.grad, their_cls.mlp[2].weight.grad]
    return max(float((a - b).abs().max() / b.abs().max().clamp(min=1e-30))
               for a, b in zip(mine, their))


def _per_gate(encoder) -> list:
    """dyngraph's gradients in the authors' order: W_0, then W, U, bias of each gate."""
    out = []
    for layer in encoder.net.layers:
        c = layer.cell
        out += [layer.initial_weight.grad, *c.weight_x.grad, *c.weight_h.grad, *c.bias.grad]
    return out


def summarize_log(path: str) -> list[dict]:
    """Per epoch of the authors' ``run_exp.py`` log: validation and (when it ran) test MAP,
    MRR and the edge class's F1, the measure their ``logger.py`` selects on."""
    rows: list[dict] = []
    cur: dict = {}
    split = None
    for line in Path(path).read_text().splitlines():
        m = re.search(r"################ (TRAIN|VALID|TEST) epoch (\d+)", line)
        if m:
            split = m.group(1)
            if split == "TRAIN":
                cur = {"epoch": int(m.group(2))}
                rows.append(cur)
            continue
        m = re.search(r"(VALID|TEST) mean MRR ([\d.e-]+) - mean MAP ([\d.e-]+)", line)
        if m:
            cur[m.group(1).lower()] = {"mrr": float(m.group(2)), "map": float(m.group(3))}
        m = re.search(r"(VALID|TEST) measures for class 1 - .* f1 ([\d.]+)", line)
        if m and m.group(1).lower() in cur:
            cur[m.group(1).lower()]["f1"] = float(m.group(2))
    return [r for r in rows if "valid" in r]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--authors-dir", required=True, help="a checkout of IBM/EvolveGCN")
    p.add_argument("--steps", nargs="+", type=int, default=[10, 30, 61])
    p.add_argument("--log", default=None, help="a run_exp.py log to summarise")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for k, v in compare(args.authors_dir, args.steps).items():
        print(f"{k}: {v}")
    if args.log:
        rows = summarize_log(args.log)
        best = 0.0
        print("epoch  val F1  val MAP  val MRR | test MAP  test MRR (run when val F1 >= best)")
        for r in rows:
            v, te = r["valid"], r.get("test")
            best = max(best, v.get("f1", 0.0))
            tail = f"{te['map']:.4f}    {te['mrr']:.4f}" if te else ""
            print(f"{r['epoch']:5d}  {v.get('f1', 0):.4f}  {v['map']:.4f}   {v['mrr']:.4f}  | "
                  + tail)


if __name__ == "__main__":
    main()
