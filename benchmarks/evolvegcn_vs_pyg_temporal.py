"""EvolveGCN-O/-H training speed: dyngraph vs PyTorch Geometric Temporal, same snapshots.

One epoch = forward over every snapshot of Bitcoin OTC at the paper's granularity (138
snapshots, 5,881 nodes), a loss on all outputs, one backward and one optimiser step; the
same 64 random input features and 64 output channels for both libraries (PyG Temporal's
EvolveGCNO only supports square weights). dyngraph is timed twice: with the normalised
adjacency of each snapshot cached (its intended use) and recomputing it in every call
(what PyG Temporal does). Prints medians over ``--repeats`` epochs and the ratios.

PyG Temporal (``pip install torch-geometric-temporal``; it imports torch-sparse) is optional:
when it is not importable the peer rows are skipped with a note. Timings on a shared CPU are
noisy; compare ratios from one run, not absolute numbers across runs.

    python benchmarks/evolvegcn_vs_pyg_temporal.py [--repeats 5] [--fast] [--clock wall|cpu]
        [--threads N] [--require-native] [--out results.json]

PyG Temporal 0.56.2 needs torch-sparse, which dyngraph does not; keep it in its own venv and
run this script there with dyngraph on the path, e.g.
``PYTHONPATH=. /work/cache/pygt-venv/bin/python benchmarks/evolvegcn_vs_pyg_temporal.py``.
If the package cannot be imported because torch-sparse is missing (it takes long to build),
the two module files ``nn/recurrent/evolvegcn{o,h}.py`` are loaded directly: they use
``torch_sparse.SparseTensor`` only in a type annotation, which a placeholder satisfies, so the
timed code is PyG Temporal's own. The report says which way the peer was loaded.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from dyngraph.datasets import BitcoinOTC
from dyngraph.nn.evolve import EvolveGCNH, EvolveGCNO
from dyngraph.nn.gcn_norm import GCNAdjacency


def _load_peer():
    """``(EvolveGCNO, EvolveGCNH, how)`` from PyG Temporal, or raise if it is not installed."""
    try:
        from torch_geometric_temporal.nn.recurrent import EvolveGCNH, EvolveGCNO

        return EvolveGCNO, EvolveGCNH, "package import"
    except ImportError as e:
        first = e
    import importlib.util
    import sys
    import types

    import torch_geometric  # noqa: F401  (decides its torch-sparse support before the shim)

    spec = importlib.util.find_spec("torch_geometric_temporal")
    if spec is None or not spec.submodule_search_locations:
        raise first
    root = Path(spec.submodule_search_locations[0]) / "nn" / "recurrent"
    if "torch_sparse" not in sys.modules:
        shim = types.ModuleType("torch_sparse")
        shim.SparseTensor = type("SparseTensor", (), {})  # annotation only in these files
        sys.modules["torch_sparse"] = shim
    pkg = types.ModuleType("_pygt_recurrent")
    pkg.__path__ = [str(root)]
    sys.modules["_pygt_recurrent"] = pkg
    mods = {}
    for name in ("evolvegcno", "evolvegcnh"):
        sp = importlib.util.spec_from_file_location(f"_pygt_recurrent.{name}", root / f"{name}.py")
        mods[name] = importlib.util.module_from_spec(sp)
        sys.modules[sp.name] = mods[name]
        sp.loader.exec_module(mods[name])
    how = f"module files loaded directly, torch-sparse placeholder ({first})"
    return mods["evolvegcno"].EvolveGCNO, mods["evolvegcnh"].EvolveGCNH, how


def _graphs(num_snapshots: int | None):
    snaps = BitcoinOTC().to_snapshots(window=1_200_000)
    n = snaps.num_nodes
    out = []
    for s in snaps:
        ei = torch.cat([s.edge_index, s.edge_index.flip(0)], 1)
        out.append((ei, torch.cat([s.edge_weight, s.edge_weight])))
    if num_snapshots:
        out = out[:num_snapshots]
    return out, n


_CLOCK = time.perf_counter


def _epoch(model, xs, graphs, step_fn) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    t0 = _CLOCK()
    loss = 0.0
    state = None
    for x, g in zip(xs, graphs):
        out, state = step_fn(model, x, g, state)
        loss = loss + out.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return _CLOCK() - t0


def _time_interleaved(entries, xs, repeats) -> dict[str, list[float]]:
    """Epoch times of every model, run round-robin (one epoch of each per round) so that a
    change of load on the shared machine hits all of them alike; round 0 is warm-up."""
    times: dict[str, list[float]] = {key: [] for key, *_ in entries}
    for r in range(repeats + 1):
        for key, _label, model, graphs, step_fn, reset in entries:
            if reset is not None:
                reset(model)
            t = _epoch(model, xs, graphs, step_fn)
            if r > 0:
                times[key].append(t)
    for key, label, *_ in entries:
        ts = times[key]
        print(
            f"{label:<44} {statistics.median(ts):8.3f} s/epoch   (min {min(ts):.3f}, n={len(ts)})",
            flush=True,
        )
    return times


def _native_path() -> str:
    """Which dyngraph path runs: the fused kernels of ``kernels/evolve.cpp`` or the torch
    fallback (then the figures are not dyngraph's best and the report must say so)."""
    from dyngraph.ops import _native
    from dyngraph.ops.backend import get_backend

    if get_backend() not in ("auto", "native"):
        return f"torch fallback (DYNGRAPH_OPS_BACKEND={get_backend()})"
    reason = _native.unavailable_reason()
    if reason is not None:
        return f"torch fallback ({reason})"
    missing = [op for op in ("evolve_gcn_conv", "evolve_mat_gru") if not _native.op_usable(op)]
    if missing:
        return f"torch fallback (native ops unusable: {', '.join(missing)})"
    return "native fused kernels (kernels/evolve.cpp)"


def _dyngraph_step(model, x, g, state):
    ei, w = g
    return model(x, ei, w, state=state)


def _dyngraph_cached_step(model, x, adj, state):
    return model(x, adj, state=state)


def _peer_step(model, x, g, state):
    ei, w = g
    return model(x, ei, w), None


def _reset_peer(model):
    # PyG Temporal keeps the evolved weight inside the module between calls (its issues
    # #297/#305); start every epoch from the initial weight so graphs do not chain epochs
    if hasattr(model, "weight"):
        model.weight = None


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--fast", action="store_true", help="20 snapshots, 2 repeats")
    p.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: elapsed time; cpu: this process's CPU time (less disturbed by other jobs "
        "on a shared machine; meaningful with one thread)",
    )
    p.add_argument("--out", default=None, help="write the medians and ratios as JSON here")
    p.add_argument(
        "--require-native",
        action="store_true",
        help="fail instead of timing dyngraph's torch fallback when the native kernels are "
        "unavailable",
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    global _CLOCK
    _CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    graphs, n = _graphs(20 if args.fast else None)
    repeats = 2 if args.fast else args.repeats
    c = args.channels
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(n, c, generator=gen) for _ in graphs]
    t0 = time.perf_counter()
    adjs = [GCNAdjacency.from_edge_index(ei, w, n) for ei, w in graphs]
    prep = time.perf_counter() - t0
    print(
        f"Bitcoin OTC: {len(graphs)} snapshots, {n} nodes, {c} channels, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"dyngraph: normalising all snapshots once took {prep:.3f} s\n")

    try:
        PeerO, PeerH, how = _load_peer()
        print(f"PyG Temporal: {how}\n")
    except Exception as e:  # not installed, or failing to load
        PeerO = PeerH = None
        how = f"not available ({type(e).__name__}: {e})"
        print(f"PyG Temporal {how}; peer rows skipped.\n")

    path = _native_path()
    print(f"dyngraph path: {path}\n")
    if not path.startswith("native") and args.require_native:
        raise SystemExit("dyngraph would run its torch fallback; --require-native given")

    torch.manual_seed(0)
    entries = [
        (
            "o_cached",
            "dyngraph EvolveGCNO (cached adjacency)",
            EvolveGCNO(c, c),
            adjs,
            _dyngraph_cached_step,
            None,
        ),
        (
            "o_raw",
            "dyngraph EvolveGCNO (normalise every call)",
            EvolveGCNO(c, c),
            graphs,
            _dyngraph_step,
            None,
        ),
    ]
    if PeerO is not None:
        entries.append(
            ("o_peer", "PyG Temporal EvolveGCNO", PeerO(c), graphs, _peer_step, _reset_peer)
        )
    entries += [
        (
            "h_cached",
            "dyngraph EvolveGCNH (cached adjacency)",
            EvolveGCNH(c, c),
            adjs,
            _dyngraph_cached_step,
            None,
        ),
        (
            "h_raw",
            "dyngraph EvolveGCNH (normalise every call)",
            EvolveGCNH(c, c),
            graphs,
            _dyngraph_step,
            None,
        ),
    ]
    if PeerH is not None:
        entries.append(
            ("h_peer", "PyG Temporal EvolveGCNH", PeerH(n, c), graphs, _peer_step, _reset_peer)
        )
    times = _time_interleaved(entries, xs, repeats)
    results = {key: statistics.median(ts) for key, ts in times.items()}
    ratios = {}
    for v in ("o", "h"):
        if f"{v}_peer" in results:
            peer = results[f"{v}_peer"]
            for mode, key in (("cached", f"{v}_cached"), ("uncached", f"{v}_raw")):
                ratios[f"evolvegcn{v}_{mode}"] = peer / results[key]
                # the median of the per-round ratios: each pairs epochs run back to back
                paired = [p / d for p, d in zip(times[f"{v}_peer"], times[key])]
                ratios[f"evolvegcn{v}_{mode}_paired"] = statistics.median(paired)
            print(
                f"EvolveGCN{v.upper()} speed-up vs PyG Temporal: "
                f"cached {ratios[f'evolvegcn{v}_cached']:.2f}x "
                f"(paired {ratios[f'evolvegcn{v}_cached_paired']:.2f}x), "
                f"uncached {ratios[f'evolvegcn{v}_uncached']:.2f}x "
                f"(paired {ratios[f'evolvegcn{v}_uncached_paired']:.2f}x)"
            )
    if args.out:
        versions = {"torch": torch.__version__, "python": platform.python_version()}
        try:  # the distribution's version (0.56.2's module still says __version__ 0.54.0)
            from importlib.metadata import version

            versions["torch_geometric_temporal"] = version("torch-geometric-temporal")
        except Exception:
            pass
        report = {
            "dataset": "bitcoin-otc",
            "num_snapshots": len(graphs),
            "num_nodes": n,
            "channels": c,
            "threads": torch.get_num_threads(),
            "clock": args.clock,
            "repeats": repeats,
            "normalise_once_s": prep,
            "epoch_s_median": results,
            "speedup_vs_pyg_temporal": ratios,
            "versions": versions,
            "peer_loaded": how,
            "dyngraph_path": path,
            "epoch_s_all": times,
            "note": "forward+backward+SGD step over all snapshots; models run round-robin, one "
            "epoch each per round, medians after one warm-up round; *_paired = median of the "
            "per-round ratios; shared noisy CPU, compare ratios within this run",
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
