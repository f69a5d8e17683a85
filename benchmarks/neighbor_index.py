"""TemporalNeighborIndex vs PyG's LastNeighborLoader (+ the bookkeeping of PyG's examples/tgn.py).

Both answer the same queries: replaying a real event stream in chronological batches, for the
unique nodes of each batch (sources, destinations, one random negative destination each),
the k most recent neighbours among the events of all *earlier* batches. PyG keeps a mutable
[N, k] buffer updated by ``insert`` after each batch; dyngraph indexes the stream once and
answers each batch with ``query_before_event``. Both then build TGN's relabelled subgraph
(``n_id``, ``edge_index``, ``e_id`` with an ``assoc`` array, and the neighbour event times),
as examples/tgn.py does.

Printed: median seconds per full replay (of --repeats), the ratio PyG / dyngraph, and the
fraction of (node, batch) queries on which both return the same neighbour event ids (PyG's
buffer can keep the wrong entries when a node has more than k events inside one batch).

    .venv/bin/python benchmarks/neighbor_index.py [--dataset uci] [--k 10] [--batch-size 200]

Timings on the shared 2-core machine are noisy; compare ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def replay_pyg(stream, batches, k):
    from torch_geometric.nn.models.tgn import LastNeighborLoader

    loader = LastNeighborLoader(stream.num_nodes, size=k)
    assoc = torch.empty(stream.num_nodes, dtype=torch.long)
    out = []
    for a, b, n_id0 in batches:
        n_id, edge_index, e_id = loader(n_id0)
        assoc[n_id] = torch.arange(n_id.size(0))
        t_nbr = stream.t[e_id]  # tgn.py gathers data.t[e_id] (and data.msg[e_id])
        out.append((n_id0, edge_index, e_id, n_id, t_nbr))
        loader.insert(stream.src[a:b], stream.dst[a:b])
    return out


def replay_dyngraph(index, stream, batches, k):
    assoc = torch.empty(stream.num_nodes, dtype=torch.long)
    out = []
    for a, _b, n_id0 in batches:
        blk = index.query_before_event(n_id0, a, k)
        sel = blk.mask.view(-1).nonzero().view(-1)  # one compaction shared by all fields
        nbr = blk.nbr.view(-1)[sel]
        nodes = n_id0[sel // k]
        e_id = blk.eid.view(-1)[sel]
        t_nbr = blk.t.view(-1)[sel]
        n_id = torch.cat([n_id0, nbr]).unique()
        assoc[n_id] = torch.arange(n_id.size(0))
        edge_index = torch.stack([assoc[nbr], assoc[nodes]])
        out.append((n_id0, edge_index, e_id, n_id, t_nbr))
    return out


def retrieval_pyg(stream, batches, k):
    """Only keeping and reading PyG's buffer: gather rows, then insert the batch."""
    from torch_geometric.nn.models.tgn import LastNeighborLoader

    loader = LastNeighborLoader(stream.num_nodes, size=k)
    for a, b, n_id0 in batches:
        loader.neighbors[n_id0], loader.e_id[n_id0]
        loader.insert(stream.src[a:b], stream.dst[a:b])


def retrieval_dyngraph(index, batches, k):
    for a, _b, n_id0 in batches:
        index.query_before_event(n_id0, a, k)


def agreement(out_a, out_b) -> float:
    """Fraction of (batch, query node) pairs with identical neighbour event-id sets."""
    same = total = 0
    for (q, ei_a, e_a, n_a, _), (_, ei_b, e_b, n_b, _) in zip(out_a, out_b):
        # map each edge back to its query node's global id
        center_a, center_b = n_a[ei_a[1]], n_b[ei_b[1]]
        key_a = set(zip(center_a.tolist(), e_a.tolist()))
        key_b = set(zip(center_b.tolist(), e_b.tolist()))
        for v in q.tolist():
            total += 1
            same += {e for c, e in key_a if c == v} == {e for c, e in key_b if c == v}
    return same / max(total, 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="uci")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=200)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: small ops, shared machine)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from dyngraph.data import TemporalNeighborIndex
    from dyngraph.datasets import get_events

    stream = get_events(args.dataset)
    gen = torch.Generator().manual_seed(0)
    pool = stream.dst_pool()
    batches = []
    for a in range(0, stream.num_events, args.batch_size):
        b = min(a + args.batch_size, stream.num_events)
        neg = pool[torch.randint(pool.numel(), (b - a,), generator=gen)]
        n_id0 = torch.cat([stream.src[a:b], stream.dst[a:b], neg]).unique()
        batches.append((a, b, n_id0))
    num_q = sum(n.numel() for _, _, n in batches)
    print(f"{stream.name}: {stream.num_events:,} events, {stream.num_nodes:,} nodes, "
          f"{len(batches)} batches of {args.batch_size}, {num_q:,} node queries, k={args.k}, "
          f"torch threads={args.threads}")

    t_build, t_dg, t_pyg, r_dg, r_pyg = [], [], [], [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        index = TemporalNeighborIndex(stream)
        t_build.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        out_dg = replay_dyngraph(index, stream, batches, args.k)
        t_dg.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        out_pyg = replay_pyg(stream, batches, args.k)
        t_pyg.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        retrieval_dyngraph(index, batches, args.k)
        r_dg.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        retrieval_pyg(stream, batches, args.k)
        r_pyg.append(time.perf_counter() - t0)
    # one vectorised call for every query of the replay (possible only with an index)
    nodes = torch.cat([n for _, _, n in batches])
    cut = torch.cat([torch.full((n.numel(),), a) for a, _, n in batches])
    t_one = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        index.query_before_event(nodes, cut, args.k)
        t_one.append(time.perf_counter() - t0)

    med = statistics.median
    build, dg, pyg, one = med(t_build), med(t_dg), med(t_pyg), med(t_one)
    print(f"{'method':58s} {'median s':>9s} {'ratio PyG/x':>11s}")
    print(f"{'PyG LastNeighborLoader call+insert + tgn.py assoc':58s} {pyg:9.4f} {1.0:11.2f}")
    print(f"{'dyngraph TemporalNeighborIndex per batch + same assoc':58s} {dg:9.4f} "
          f"{pyg / dg:11.2f}")
    print(f"{'  ... including building the index':58s} {dg + build:9.4f} "
          f"{pyg / (dg + build):11.2f}")
    print(f"{'dyngraph one query call for all batches (+ build)':58s} {one + build:9.4f} "
          f"{pyg / (one + build):11.2f}")
    rd, rp = med(r_dg), med(r_pyg)
    print(f"{'retrieval only: PyG buffer gather + insert':58s} {rp:9.4f} {1.0:11.2f}")
    print(f"{'retrieval only: dyngraph query_before_event':58s} {rd:9.4f} {rp / rd:11.2f}")
    print(f"index build {build * 1e3:.1f} ms; same neighbour sets on "
          f"{agreement(out_dg, out_pyg):.2%} of (batch, node) queries")


if __name__ == "__main__":
    main()
