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

    python benchmarks/evolvegcn_vs_pyg_temporal.py [--repeats 5] [--fast] [--out results.json]

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


def _epoch(model, xs, graphs, step_fn) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    t0 = time.perf_counter()
    loss = 0.0
    state = None
    for x, g in zip(xs, graphs):
        out, state = step_fn(model, x, g, state)
        loss = loss + out.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return time.perf_counter() - t0


def _time(name, model, xs, graphs, step_fn, repeats, reset=None) -> float:
    times = []
    for r in range(repeats + 1):
        if reset is not None:
            reset(model)
        t = _epoch(model, xs, graphs, step_fn)
        if r > 0:  # first epoch is warm-up
            times.append(t)
    med = statistics.median(times)
    print(f"{name:<44} {med:8.3f} s/epoch   (min {min(times):.3f}, n={len(times)})", flush=True)
    return med


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
    p.add_argument("--out", default=None, help="write the medians and ratios as JSON here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
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

    results = {}
    torch.manual_seed(0)
    results["o_cached"] = _time(
        "dyngraph EvolveGCNO (cached adjacency)",
        EvolveGCNO(c, c),
        xs,
        adjs,
        _dyngraph_cached_step,
        repeats,
    )
    results["o_raw"] = _time(
        "dyngraph EvolveGCNO (normalise every call)",
        EvolveGCNO(c, c),
        xs,
        graphs,
        _dyngraph_step,
        repeats,
    )
    if PeerO is not None:
        results["o_peer"] = _time(
            "PyG Temporal EvolveGCNO", PeerO(c), xs, graphs, _peer_step, repeats, reset=_reset_peer
        )
    results["h_cached"] = _time(
        "dyngraph EvolveGCNH (cached adjacency)",
        EvolveGCNH(c, c),
        xs,
        adjs,
        _dyngraph_cached_step,
        repeats,
    )
    results["h_raw"] = _time(
        "dyngraph EvolveGCNH (normalise every call)",
        EvolveGCNH(c, c),
        xs,
        graphs,
        _dyngraph_step,
        repeats,
    )
    if PeerH is not None:
        results["h_peer"] = _time(
            "PyG Temporal EvolveGCNH",
            PeerH(n, c),
            xs,
            graphs,
            _peer_step,
            repeats,
            reset=_reset_peer,
        )
    ratios = {}
    for v in ("o", "h"):
        if f"{v}_peer" in results:
            peer = results[f"{v}_peer"]
            ratios[f"evolvegcn{v}_cached"] = peer / results[f"{v}_cached"]
            ratios[f"evolvegcn{v}_uncached"] = peer / results[f"{v}_raw"]
            print(
                f"EvolveGCN{v.upper()} speed-up vs PyG Temporal: "
                f"cached {peer / results[f'{v}_cached']:.2f}x, "
                f"uncached {peer / results[f'{v}_raw']:.2f}x"
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
            "repeats": repeats,
            "normalise_once_s": prep,
            "epoch_s_median": results,
            "speedup_vs_pyg_temporal": ratios,
            "versions": versions,
            "peer_loaded": how,
            "note": "forward+backward+SGD step over all snapshots; medians after one warm-up "
            "epoch; shared noisy CPU, compare ratios within this run",
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
