"""Per-file readers for result files whose layout the generic reader (``results.tables``)
renders badly: nested ``{model: {metric: [mean, std]}}`` summaries, per-run lists inside
configurations, published numbers stored next to measured ones.

``normalise(stem, data)`` returns ``[(title, records)]`` like ``results.tables``; a record's
values are scalars or :class:`Stat` (mean ± std over n runs, formatted by ``results.fmt``).
A reader that does not recognise the file (a script changed its output) raises, and the
generic reader is used instead, so a new layout never breaks the build. Figures are copied
from the file, never computed here beyond picking the last entry of a curve.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Table = tuple[str, list[dict]]


@dataclass(frozen=True)
class Stat:
    """A figure recorded as mean ± spread over ``n`` runs (``spread`` may be a std or s.e.m.)."""

    mean: float
    std: float | None = None
    n: int | None = None

    @property
    def value(self) -> float:
        return self.mean


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return None if isinstance(v, float) and math.isnan(v) else v


def _stat(mean: Any, std: Any = None, n: int | None = None) -> Stat | None:
    m = _num(mean)
    if m is None:
        return None
    return Stat(m, _num(std) if n is None or n > 1 else None, n)


# --------------------------------------------------------------------------- memory models
def memory_models(data: dict) -> list[Table]:
    """``{"args": ..., "results": {model: {metric: [mean, std]}}}`` (memory_models.py)."""
    args = data["args"]
    n = len(args.get("seeds") or [0])
    names = {"ap": "test_ap", "auc": "test_auc", "mrr": "test_mrr", "ind_ap": "inductive_ap",
             "events_per_s": "train_events_per_s", "epoch_s": "epoch_s"}
    recs = []
    for model, ms in data["results"].items():
        rec: dict = {"model": model, "dataset": args.get("dataset"), "seeds": n}
        for k, v in ms.items():
            rec[names.get(k, k)] = _stat(*v, n=n) if isinstance(v, list) else _num(v)
        recs.append(rec)
    return [("", recs)]


def tgn_vs_pyg(data: dict) -> list[Table]:
    """``{"args": ..., "results": {implementation: {...}}}`` (tgn_vs_pyg.py)."""
    recs = []
    # the main run, then any extra runs stored beside it (other thread counts, datasets)
    for run in [data, *(data.get("more_runs") or [])]:
        args = run["args"]
        for impl, r in run["results"].items():
            recs.append({
                "model": "tgn", "implementation": impl, "dataset": args.get("dataset"),
                "threads": args.get("threads"),
                "test_ap": r["test_ap"], "test_auc": r.get("test_auc"),
                "train_events_per_s_median": r.get("train_events_per_s_median"),
                "train_events_per_cpu_s_median": r.get("train_events_per_cpu_s_median"),
                "speed_ratio_vs_pyg": r.get("speed_ratio_vs_pyg"),
                "cpu_speed_ratio_vs_pyg": r.get("cpu_speed_ratio_vs_pyg")})
    return [("", recs)]


# --------------------------------------------------------------------------- EvolveGCN
def evolvegcn(data: dict) -> list[Table]:
    """``{"task/dataset/model": {"runs": [...], metric: {mean, std, n}, "paper": {...}}}``."""
    by_task: dict[str, list[dict]] = {}
    for key, cell in data.items():
        if not isinstance(cell, dict) or key.count("/") != 2:
            continue
        task, dataset, model = key.split("/")
        rec: dict = {"task": task, "dataset": dataset, "model": model}
        for metric in ("map", "mrr", "f1", "f1_macro", "f1_micro"):
            m = cell.get(metric)
            if isinstance(m, dict):
                rec[metric] = _stat(m.get("mean"), m.get("std"), m.get("n"))
                paper = (cell.get("paper") or {}).get(metric)
                if paper is not None:
                    rec[f"paper_{metric}"] = paper
        if "roland_gru_mrr" in cell:
            rec["roland_gru_mrr"] = cell["roland_gru_mrr"]
        runs = cell.get("runs") or []
        secs = [r["epoch_s_median"] for r in runs if _num(r.get("epoch_s_median")) is not None]
        rec["seeds"] = len(runs)
        rec["epoch_s_median"] = sorted(secs)[len(secs) // 2] if secs else None
        by_task.setdefault(task, []).append(rec)
    titles = {"linkpred": "link prediction (MAP / MRR over all node pairs; paper = EvolveGCN "
                          "Table 3, ROLAND = the GRU row of ROLAND's table)",
              "edgecls": "edge classification (F1 of the minority, negative-trust class; macro F1; "
                         "micro F1 = accuracy, the measure of the paper's Figure 3)"}
    if not by_task:
        raise ValueError("no task/dataset/model cells")
    return [(titles.get(t, t), recs) for t, recs in by_task.items()]


def evolvegcn_vs_pyg_temporal(data: dict) -> list[Table]:
    """Epoch medians per variant and the speed-ups (evolvegcn_vs_pyg_temporal.py)."""
    med = data["epoch_s_median"]
    sp = data["speedup_vs_pyg_temporal"]
    recs = []
    for short, name in (("o", "EvolveGCN-O"), ("h", "EvolveGCN-H")):
        recs.append({
            "model": name, "dataset": data.get("dataset"),
            "snapshots": data.get("num_snapshots"), "nodes": data.get("num_nodes"),
            "dyngraph_cached_s": med.get(f"{short}_cached"),
            "dyngraph_uncached_s": med.get(f"{short}_raw"),
            "pyg_temporal_s": med.get(f"{short}_peer"),
            "speedup_cached": sp.get(f"evolvegcn{short}_cached"),
            "speedup_uncached": sp.get(f"evolvegcn{short}_uncached")})
    return [("median seconds per training epoch (forward + backward + step over all "
             "snapshots); speed-up = PyG Temporal / dyngraph", recs)]


# --------------------------------------------------------------------------- kernels / ops
def ops(data: dict) -> list[Table]:
    """``{"runs": {config: {"command", "rows": [...]}}, "tgn_end_to_end": {...}}``."""
    out: list[Table] = []
    for cfg, run in data["runs"].items():
        recs = []
        for r in run["rows"]:
            secs = r.get("seconds") or {}
            recs.append({"op": r["op"], "pass": r.get("pass"), "F": r.get("F"),
                         "E": r.get("E"), "degrees": r.get("degrees"),
                         "native_s": secs.get("native"), "torch_s": secs.get("torch"),
                         "scatter_s": secs.get("scatter"),
                         "best_peer_over_native": r.get("best_peer_over_native"),
                         "native_GBps": r.get("native_GBps")})
        title = (f"{cfg}: {run.get('clock', '?')} clock, {run.get('threads', '?')} thread(s), "
                 f"median of {run.get('repeats', '?')}; copy bandwidth "
                 f"{run.get('copy_bandwidth_GBps', '?')} GB/s — `{run.get('command', '')}`")
        out.append((title, recs))
    tgn = data.get("tgn_end_to_end")
    if isinstance(tgn, dict):
        out.append((f"TGN end to end (events/s) — `{tgn.get('command', '')}`", [{
            "torch_events_per_s": tgn.get("torch_events_per_s"),
            "native_events_per_s": tgn.get("native_events_per_s"),
            "kernel_share": tgn.get("kernel_share"), "predicted_ratio": tgn.get("predicted"),
            "measured_ratio": tgn.get("measured")}]))
    return out


# --------------------------------------------------------------------------- traffic
def batch_generation(data: dict) -> list[Table]:
    recs, disk = [], []
    for r in data["runs"]:
        agr = r.get("agreement") or {}
        recs.append({
            "network": r["network"], "rgap": r["rgap"], "scenarios": r.get("scenarios"),
            "single_ms_per_scenario": r.get("single_ms_per_scenario"),
            "batch_ms_per_scenario": r.get("batch_ms_per_scenario"),
            "speedup": r.get("speedup"),
            "speedup_iteration_matched": r.get("speedup_iteration_matched"),
            "cpu_time_speedup": r.get("cpu_time_speedup"),
            "same_iterations": f"{agr.get('same_iterations')}/{agr.get('compared')}"
            if agr else None,
            "max_rel_flow_diff": agr.get("max_rel_flow_diff"),
            "max_batch_rgap": agr.get("max_batch_rgap")})
        for jobs, d in (r.get("run_scenarios") or {}).items():
            disk.append({"network": r["network"], "rgap": r["rgap"], "workers": jobs,
                         **{k: v for k, v in d.items() if _num(v) is not None}})
    out = [("batched vs one-by-one (speed-up: median over rounds of the per-round ratio)",
            recs)]
    if disk:
        out.append(("run_scenarios to disk (chunked, resumable), by worker processes", disk))
    return out


def ue_vs_aequilibrae(data: dict) -> list[Table]:
    recs = [{k: g.get(k) for k in (
        "network", "rgap", "dyngraph_s", "dyngraph_iterations", "aequilibrae_s",
        "aequilibrae_iterations", "speedup", "max_rel_link_flow_diff", "dyngraph_tstt",
        "aequilibrae_tstt")} for g in data["gaps"]]
    out = [("time to relative gap (median seconds; speed-up = AequilibraE / dyngraph)", recs)]
    if data.get("batch"):
        out.append(("batched scenario generation", [
            {k: v for k, v in b.items() if not isinstance(v, (list, dict))}
            for b in data["batch"]]))
    return out


# --------------------------------------------------------------------------- bilevel
def surrogate_accuracy(data: dict) -> list[Table]:
    recs = []
    for name, r in data.items():
        if not (isinstance(r, dict) and isinstance(r.get("test"), dict)):
            continue
        t, cfg = r["test"], r.get("config") or {}
        recs.append({
            "config": name, "model": "flowgnn" if cfg.get("layers", 1) else "global-mlp",
            "gin_layers": cfg.get("layers"), "hidden": cfg.get("hidden"),
            "ttt_accuracy": t.get("ttt_accuracy"), "flow_r2": t.get("flow_r2"),
            "flow_mae": t.get("flow_mae"), "ms_per_scenario": t.get("ms_per_scenario"),
            "train_scenarios": r.get("train"), "epochs": r.get("epochs"),
            "train_seconds": r.get("train_seconds_total")})
    ref = data.get("paper_reference")
    if isinstance(ref, dict):
        recs.append({"config": "published (Madadi & Correia 2024)", "model": "published",
                     "ttt_accuracy": ref.get("ttt_accuracy"), "flow_r2": ref.get("flow_r2"),
                     "ms_per_scenario": ref.get("ms_per_scenario")})
    if not recs:
        raise ValueError("no configurations with test metrics")
    cmds = [{"config": name, "command": f"`{r['command']}`"} for name, r in data.items()
            if isinstance(r, dict) and isinstance(r.get("command"), str)]
    out = [("held-out test split; TTT accuracy = 1 − mean |TTT_pred − TTT_true| / TTT_true, "
            "flow R² pooled over (scenario, link)", recs)]
    return out + ([("the command of each configuration", cmds)] if cmds else [])


def _design_tables(block: dict, label: str) -> list[Table]:
    out: list[Table] = []
    for problem, p in block.items():
        if not (isinstance(p, dict) and isinstance(p.get("modes"), dict)):
            continue
        s = p.get("surrogate_all_designs") or {}
        head = (f"{label}{problem}: {p.get('designs')} designs, exact enumeration "
                f"{p.get('enum_s', float('nan')):.1f} s, optimum TTT {p.get('optimum', 0):,.0f} "
                f"(do nothing {p.get('do_nothing', 0):,.0f}); surrogate over all designs: "
                f"Spearman {s.get('spearman', float('nan')):.3f}, true optimum ranked "
                f"{s.get('rank_of_optimum')}")
        recs = []
        for mode, m in p["modes"].items():
            med = m.get("median") or {}
            recs.append({"GA variant": mode, "gap_mean_pct": m.get("gap_mean_pct"),
                         "gap_max_pct": m.get("gap_max_pct"), "seeds": len(m.get("runs", [])),
                         "median_total_s": med.get("total_s"),
                         "search_pct_of_enum": m.get("search_pct_of_enum"),
                         "total_pct_of_enum": m.get("total_pct_of_enum")})
        out.append((head, recs))
    return out


def network_design(data: dict) -> list[Table]:
    out = _design_tables(data, "")
    for key, block in data.items():
        if isinstance(block, dict) and key.startswith("runs_with"):
            label = key.removeprefix("runs_with_").replace("_", " ")
            out += _design_tables(block, f"with surrogate {label} — ")
        elif isinstance(block, dict) and key.startswith("instance_"):
            label = key.removeprefix("instance_").replace("_", " ")
            out += _design_tables(block, f"smaller instance, {label} — ")
    if not out:
        raise ValueError("no design problems")
    return out


# --------------------------------------------------------------------------- NAS
def nas_cora(data: dict) -> list[Table]:
    ds = data.get("dataset")
    recs = []
    for method, run in data["runs"].items():
        for budget, a in (run.get("at") or {}).items():
            recs.append({"model": "searched", "dataset": ds, "search": method,
                         "trials": int(budget), "search_val": a.get("search_val"),
                         "test_acc": _stat(a.get("test_mean"), a.get("test_std"),
                                           (data.get("final_protocol") or {}).get("seeds")),
                         "found_at_trial": a.get("trial"),
                         "trials_per_minute": run.get("trials_per_minute")})
    base = []
    seeds = (data.get("final_protocol") or {}).get("seeds")
    for name, b in (data.get("baselines") or {}).items():
        base.append({"model": name, "dataset": ds,
                     "test_acc": _stat(b.get("test_mean"), b.get("test_std"), seeds),
                     "paper_test_acc_pct": b.get("paper")})  # percent, as published
    for name, v in (data.get("paper") or {}).items():
        if name not in (data.get("baselines") or {}):
            base.append({"model": name, "dataset": ds, "test_acc": None,
                         "paper_test_acc_pct": v})
    sel = data.get("final_selection") or {}
    how = (f"the best mean validation accuracy over {sel['seeds']} retrains among the top "
           f"{sel['top_k']} search trials" if sel.get("top_k", 1) > 1
           else "search validation accuracy")
    out = [(f"architecture picked by {how} after each budget, retrained from scratch (test "
            f"accuracy mean ± std over {seeds} seeds)", recs)]
    if base:
        out.append(("hand-designed baselines, same training protocol, next to the published "
                    "numbers", base))
    if data.get("sharing_speedup") is not None:
        out.append(("", [{"parameter sharing speed-up (trials/min)":
                          data["sharing_speedup"]}]))
    return out


def nasbench_regret(data: dict) -> list[Table]:
    recs = []
    for ds, d in data["datasets"].items():
        for ctrl, c in d["controllers"].items():
            rec: dict = {"dataset": ds, "controller": ctrl}
            for q, v in (c.get("at") or {}).items():
                rec[f"regret@{q}"] = _stat(v[0], v[1], 2) if isinstance(v, list) else v
            rec["seconds_per_search"] = c.get("seconds_per_search")
            recs.append(rec)
    diffs = []
    for ds, d in data["datasets"].items():
        for key in ("rcc_minus_random", "rcc_minus_evolution"):
            v = d.get(key)
            if isinstance(v, dict):
                diffs.append({"dataset": ds, "difference": key.replace("_", " "),
                              "mean ± s.e.m.": _stat(v.get("mean"), v.get("sem"), 2),
                              "seeds where rcc better": v.get("rcc_better_seeds")})
    n = len(data.get("seeds") or [])
    unit = data.get("regret_unit", "")
    out = [(f"regret ({unit}) after n queries, mean ± s.e.m. over {n} seeds", recs)]
    if diffs:
        out.append(("paired differences of the final regret (negative: RCC better)", diffs))
    return out


READERS: dict[str, Callable[[Any], list[Table]]] = {
    "memory_models": memory_models, "tgn_wikipedia": memory_models,
    "tgn_vs_pyg": tgn_vs_pyg, "evolvegcn": evolvegcn,
    "evolvegcn_vs_pyg_temporal": evolvegcn_vs_pyg_temporal, "ops": ops,
    "batch_generation": batch_generation, "ue_vs_aequilibrae": ue_vs_aequilibrae,
    "surrogate_accuracy": surrogate_accuracy, "network_design": network_design,
    "nas_cora": nas_cora, "nasbench_regret": nasbench_regret,
}



def reader_for(stem: str) -> Callable[[Any], list[Table]] | None:
    """The reader of a result file: by its stem, or ``nas_<dataset>`` like ``nas_cora``."""
    if stem in READERS:
        return READERS[stem]
    if stem.startswith("nas_") and not stem.startswith("nasbench"):
        return nas_cora
    return None


def script_of(stem: str) -> str | None:
    """The benchmark script that writes a result file, where the name does not say so."""
    if stem in SCRIPT_OF:
        return SCRIPT_OF[stem]
    if stem.startswith("nas_") and not stem.startswith("nasbench"):
        return "nas_cora"
    return None


# result file stem -> the benchmark script that writes it, where the name does not say so
SCRIPT_OF = {"ops": "kernels", "tgn_wikipedia": "memory_models",
             "evolvegcn": "evolvegcn_results", "pres_ablation_uci": "pres_batch_size",
             "pres_batch_size_uci": "pres_batch_size"}
