"""``dyngraph datasets`` (what is bundled, verified) and ``dyngraph demo`` (data pipeline
end to end on CollegeMsg)."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import time

import torch

from dyngraph.datasets.files import find_file, md5sum
from dyngraph.datasets.registry import DATASETS, FILES

__all__ = ["register", "dataset_rows", "stream_stats"]


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _file_status(relpath: str) -> tuple[str, int]:
    info = FILES[relpath]
    path = find_file(relpath)
    if path is None:
        return ("missing (downloadable)" if info.url else "missing"), 0
    ok = md5sum(path) == info.md5
    return ("OK" if ok else "MISMATCH"), path.stat().st_size


def _span(a: float, b: float) -> str:
    days = (b - a) / 86400
    if a > 1e8:  # Unix time
        d0 = _dt.datetime.fromtimestamp(a, _dt.timezone.utc).date()
        d1 = _dt.datetime.fromtimestamp(b, _dt.timezone.utc).date()
        return f"{d0}..{d1} ({days:.0f} d)"
    return f"{days:.1f} d" if days >= 1 else f"{(b - a) / 3600:.1f} h"


def dataset_rows(load: bool = True) -> list[dict]:
    """One dict per registered dataset: name, kind, events, nodes, span, bytes, md5 status,
    source. With ``load`` the event datasets are parsed (counts measured, not quoted)."""
    from dyngraph.datasets.named import load_dataset

    rows = []
    for name, info in DATASETS.items():
        statuses = [_file_status(f) for f in info.files]
        states = {s for s, _ in statuses}
        md5 = "OK" if states == {"OK"} else ", ".join(sorted(states))
        row = dict(name=name, kind=info.kind, events=info.num_events, nodes=info.num_nodes,
                   span="", bytes=sum(b for _, b in statuses), md5=md5,
                   source=FILES[info.files[0]].source, citation=info.citation)
        if load and states == {"OK"} and info.kind in ("events", "planetoid"):
            obj = load_dataset(name)
            if info.kind == "events":
                row.update(events=obj.num_events, nodes=int(obj.active_nodes().sum()),
                           span=_span(*obj.time_span))
            else:
                row.update(events=int(obj.edge_index.size(1)), nodes=int(obj.num_nodes),
                           span="static")
        elif info.kind != "events":
            row["span"] = "static"
        rows.append(row)
    return rows


def _cmd_datasets(args: argparse.Namespace) -> int:
    rows = dataset_rows(load=not args.quick)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0 if all(r["md5"] in ("OK", "missing (downloadable)") for r in rows) else 1
    head = ("name", "kind", "events/edges", "nodes", "time span", "size", "md5", "source")
    table = [head] + [
        (r["name"], r["kind"], "-" if r["events"] is None else f"{r['events']:,}",
         "-" if r["nodes"] is None else f"{r['nodes']:,}", r["span"] or "-",
         _human_bytes(r["bytes"]) if r["bytes"] else "-", r["md5"], r["source"])
        for r in rows
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(head) - 1)]
    for row in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
    print("\nFiles are searched in $DYNGRAPH_DATA (or the repository's datasets/), then the "
          "cache; see datasets/PROVENANCE.md for sources, terms and citations.")
    bad = [r["name"] for r in rows if "MISMATCH" in r["md5"]]
    if bad:
        print(f"checksum mismatch: {', '.join(bad)} -- restore or delete those files.")
        return 1
    return 0


def stream_stats(stream, k: int = 10, batch_size: int = 200, seed: int = 0) -> dict:
    """Statistics of the data pipeline on ``stream``: split sizes, new-node fractions and
    measured neighbour-query throughput (queries of ``k`` neighbours per second)."""
    from dyngraph.data import TemporalNeighborIndex

    t0 = time.perf_counter()
    split = stream.split(seed=seed)
    t_split = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = TemporalNeighborIndex(split.full)
    t_build = time.perf_counter() - t0
    # the query pattern of a memory model: both endpoints of every event, at its time,
    # one batch at a time
    nodes = torch.stack([stream.src, stream.dst], 1)
    times = torch.stack([stream.t, stream.t], 1)
    t0 = time.perf_counter()
    filled = 0
    for s in range(0, stream.num_events, batch_size):
        blk = index.query(nodes[s:s + batch_size].reshape(-1),
                          times[s:s + batch_size].reshape(-1), k)
        filled += int(blk.mask.sum())
    t_query = time.perf_counter() - t0
    num_q = 2 * stream.num_events
    a, b = stream.time_span
    return dict(
        name=stream.name, events=stream.num_events, nodes=int(stream.active_nodes().sum()),
        span=_span(a, b), train=split.train.num_events, val=split.val.num_events,
        test=split.test.num_events,
        new_node_fraction=float(split.new_node_mask.sum()) / max(1, int(
            stream.active_nodes().sum())),
        val_inductive_fraction=float(split.val_inductive.float().mean()),
        test_inductive_fraction=float(split.test_inductive.float().mean()),
        split_seconds=t_split, index_build_seconds=t_build, k=k, batch_size=batch_size,
        queries=num_q, query_seconds=t_query, queries_per_second=num_q / t_query,
        mean_neighbors=filled / num_q,
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    from dyngraph.datasets.named import get_events

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    stream = get_events(args.dataset)
    t_load = time.perf_counter() - t0
    st = stream_stats(stream, k=args.k, batch_size=args.batch_size, seed=args.seed)
    st["load_seconds"] = t_load
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    print(f"dataset          {st['name']}: {st['events']:,} events, {st['nodes']:,} nodes, "
          f"{st['span']}  (loaded + md5-verified in {t_load:.2f} s)")
    print(f"split (70/15/15) train {st['train']:,} / val {st['val']:,} / test {st['test']:,} "
          f"events  ({st['split_seconds'] * 1e3:.0f} ms)")
    print(f"new nodes        {st['new_node_fraction']:.1%} of nodes unseen in training; "
          f"inductive events: val {st['val_inductive_fraction']:.1%}, "
          f"test {st['test_inductive_fraction']:.1%}")
    print(f"neighbour index  built in {st['index_build_seconds'] * 1e3:.1f} ms; "
          f"{st['queries']:,} queries (k={st['k']}, batches of {st['batch_size']} events) in "
          f"{st['query_seconds']:.2f} s = {st['queries_per_second']:,.0f} queries/s, "
          f"{st['mean_neighbors']:.1f} neighbours each on average")
    print(f"(torch threads: {torch.get_num_threads()}; timings on a shared machine are noisy)")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("datasets", help="list bundled datasets, sizes, provenance, md5",
                              description="List the bundled datasets with measured sizes, "
                              "time span, file size, md5 status and source.")
    p.add_argument("--quick", action="store_true",
                   help="do not parse the files; show the published counts")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_datasets)

    d = subparsers.add_parser("demo", help="load CollegeMsg, split, index neighbours, report",
                              description="Run the data pipeline end to end on a bundled "
                              "dataset and report its statistics.")
    d.add_argument("--dataset", default="uci", help="bundled name or event file (default uci)")
    d.add_argument("--k", type=int, default=10, help="neighbours per query (default 10)")
    d.add_argument("--batch-size", type=int, default=200, help="events per batch (default 200)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--threads", type=int, default=1,
                   help="torch threads; per-batch ops are small, so 1 is fastest (0: default)")
    d.add_argument("--json", action="store_true", help="machine-readable output")
    d.set_defaults(func=_cmd_demo)

