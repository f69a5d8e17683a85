"""Generate the docs pages that are derived from the code, the examples and the results.

Run by mkdocs-gen-files at every ``mkdocs build`` (see ``mkdocs.yml``); nothing it writes is
stored in the repository. Each ``*_pages()`` function returns ``{docs path: markdown}`` so the
tests can call them without building the site.

=====================  ===========================================================
page                   generated from
=====================  ===========================================================
api/*.md               each package's ``__all__`` (``api_index.py``), docstrings via
                       mkdocstrings
tutorials/*.md         ``examples/*.py``: module docstring + the file verbatim
cli.md                 ``dyngraph.cli.build_parser()`` help texts
datasets.md            ``datasets/PROVENANCE.md``, ``datasets/MD5SUMS`` checked against the
                       files now, statistics computed by the loaders now
benchmarks.md          ``benchmarks/*.py`` docstrings, ``benchmarks/results/*.json|png``
model-zoo.md           public ``torch.nn.Module`` classes + ``ZOO`` (paper, task) + results
installation.md        ``docs/installation.md`` with the extras read from pyproject.toml
=====================  ===========================================================
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import inspect
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import api_index  # noqa: E402
import formats  # noqa: E402
import results  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
NOT_MEASURED = "not yet measured"


# --------------------------------------------------------------------------- helpers
def module_doc(path: Path) -> str:
    return ast.get_docstring(ast.parse(path.read_text())) or ""


def split_doc(doc: str) -> tuple[str, str]:
    """(summary, rest) of a docstring: the summary is its first paragraph on one line."""
    first, _, rest = doc.strip().partition("\n\n")
    return " ".join(first.split()), rest.strip("\n").rstrip()  # keep indented commands


def title_of(doc: str) -> tuple[str, str]:
    """(title, rest) of an example's docstring: the title is the summary's first clause."""
    summary, rest = split_doc(doc)
    m = re.search(r"[.;](\s|$)", summary)
    if m and m.end() < len(summary):
        return summary[:m.start()], (summary[m.end():].strip() + "\n\n" + rest).strip()
    return summary.rstrip("."), rest


def doc_to_markdown(text: str) -> str:
    """A script docstring as Markdown: indented command lines become a console block."""
    out: list[str] = []
    block: list[str] = []

    def flush() -> None:
        if block:
            out.extend(["", "```bash", *block, "```", ""])
            block.clear()

    for line in text.splitlines():
        s = line.strip()
        if line.startswith("    ") and re.match(r"^(\.venv/bin/)?(python|dyngraph|make)\b", s):
            block.append(s)
            continue
        if block and line.startswith("    ") and s:
            block.append(s)
            continue
        flush()
        out.append(line)
    flush()
    text = "\n".join(out)
    text = re.sub(r":(?:func|class|meth|mod):`~?([^`]+)`", r"`\1`", text)
    return text


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def fence(code: str, lang: str = "") -> str:
    ticks = "````" if "```" in code else "```"
    return f"{ticks}{lang}\n{code.rstrip()}\n{ticks}"


# --------------------------------------------------------------------------- API reference
def api_pages() -> dict[str, str]:
    """One page per package: a ``:::`` directive per object documented there, a link for
    each name re-exported from another page."""
    import importlib

    by_pkg: dict[str, list[api_index.Entry]] = {}
    for e in api_index.entries():
        by_pkg.setdefault(e.package, []).append(e)
    pages: dict[str, str] = {}
    index = ["# API reference", "",
             "Generated from the docstrings. Every name in a package's `__all__` is listed on "
             "that package's page; an object exported by several packages is documented once "
             "and linked from the others.", "",
             "| package | public names | |", "|---|---|---|"]
    for pkg, page, title in api_index.PACKAGES:
        mod = importlib.import_module(pkg)
        summary, body = split_doc(mod.__doc__ or "")
        es = by_pkg.get(pkg, [])
        index.append(f"| [`{pkg}`]({page.removeprefix('api/')}) | {len(es)} | {summary} |")
        lines = [f"# {title}", "", summary, ""]
        if body:
            lines += ['??? info "About this package"', ""]
            lines += ["    " + ln if ln else "" for ln in doc_to_markdown(body).splitlines()]
            lines.append("")
        local = [e for e in es if e.documented_here]
        elsewhere = [e for e in es if not e.documented_here]
        if elsewhere:
            lines += ["Also exported here (documented on another page):", ""]
            for e in elsewhere:
                lines.append(f"- `{e.ident}` → [`{e.home}`][{e.home}]")
            lines.append("")
        for e in local:
            if e.kind == "attribute":
                continue
            lines += [f"::: {e.ident}", ""]
            if e.kind == "module":
                lines += ["    options:", "      members_order: source", ""]
        consts = [e for e in local if e.kind == "attribute"]
        if consts:
            lines += ["## Constants", ""]
            for e in consts:
                lines += [f"### `{e.name}` {{#{e.ident}}}", "", describe_value(e.obj), ""]
        pages[page] = "\n".join(lines)
    pages["api/index.md"] = "\n".join(index) + "\n"
    return pages


def describe_value(obj: object) -> str:
    """A constant's type and value (keys only for mappings), read at build time."""
    kind = type(obj).__name__
    if isinstance(obj, dict):
        keys = ", ".join(f"`{k}`" for k in list(obj)[:40])
        more = f" and {len(obj) - 40} more" if len(obj) > 40 else ""
        return f"`{kind}` with {len(obj)} entries: {keys}{more}."
    text = repr(obj)
    if len(text) > 300:
        text = text[:300] + " …"
    return f"`{kind}`:\n\n" + fence(text, "python")


# --------------------------------------------------------------------------- tutorials
EXAMPLES = ROOT / "examples"


def tutorial_pages() -> dict[str, str]:
    """One tutorial per example script: its docstring as the text, then the script itself."""
    pages: dict[str, str] = {}
    index = ["# Tutorials", "",
             "One tutorial per capability, each generated from a script in `examples/`. The "
             "code shown is the file itself, read at build time, and `tests/test_examples.py` "
             "runs every one of these files (with `--fast`) in the test suite, so the code on "
             "these pages is code that runs.", "",
             "| tutorial | script |", "|---|---|"]
    for path in sorted(EXAMPLES.glob("*.py")):
        title, rest = title_of(module_doc(path))
        page = f"tutorials/{path.stem}.md"
        index.append(f"| [{title}]({path.stem}.md) | `{rel(path)}` |")
        code = path.read_text()
        body = [f"# {title}", "", doc_to_markdown(rest), "",
                "## Run it", "",
                fence(f"python {rel(path)}          # full settings\n"
                      f"python {rel(path)} --fast   # tiny settings, as the test suite runs it",
                      "bash"), "",
                f"## The script: `{rel(path)}`", "",
                f"{len(code.splitlines())} lines, shown verbatim.", "",
                fence(code, "python"), ""]
        pages[page] = "\n".join(body)
    pages["tutorials/index.md"] = "\n".join(index) + "\n"
    return pages


# --------------------------------------------------------------------------- CLI
def cli_page() -> dict[str, str]:
    os.environ["COLUMNS"] = "88"  # argparse wraps help to the terminal width
    from dyngraph.cli import build_parser

    parser = build_parser()
    parser.prog = "dyngraph"
    lines = ["# Command line", "",
             "Generated from the `argparse` parser that the `dyngraph` console script uses "
             "(`dyngraph.cli.build_parser()`), so every option below exists.", "",
             fence(parser.format_help(), "text"), ""]
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in subs:
        helps = {c.dest: c.help for c in action._choices_actions}
        for name, sub in action.choices.items():
            lines += [f"## `dyngraph {name}`", "", (helps.get(name) or "").capitalize(), "",
                      fence(sub.format_help(), "text"), ""]
    return {"cli.md": "\n".join(lines)}


# --------------------------------------------------------------------------- datasets
def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def datasets_page() -> dict[str, str]:
    from dyngraph.datasets import get_events
    from dyngraph.datasets.cli import dataset_rows

    data = ROOT / "datasets"
    lines = ["# Datasets", "",
             "Everything on this page is computed when the site is built: the statistics by "
             "dyngraph's own loaders from the bundled files, the checksums from the files "
             "themselves (compared with `datasets/MD5SUMS`); the provenance section is "
             "`datasets/PROVENANCE.md` verbatim.", "",
             "## Statistics (measured by the loaders)", "",
             "| dataset | kind | events / edges | nodes | time span | size | md5 | source |",
             "|---|---|---|---|---|---|---|---|"]
    rows = dataset_rows(load=True)
    for r in rows:
        size = f"{r['bytes'] / 1024:,.0f} KB" if r["bytes"] else "–"
        lines.append(f"| `{r['name']}` | {r['kind']} | {results.fmt(r['events'])} | "
                     f"{results.fmt(r['nodes'])} | {r['span'] or '–'} | {size} | {r['md5']} | "
                     f"{r['source']} |")
    lines += ["", "The same table on the command line: `dyngraph datasets`.", "",
              "### Chronological splits (70/15/15, `EventStream.split()`)", "",
              "Training keeps only events between nodes seen before the validation period "
              "(new nodes are held out), so its count is below 70 % of the stream; "
              "*inductive* events touch a node never seen in training.", "",
              "| dataset | train | val | test | new nodes | val inductive | test inductive |",
              "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["kind"] != "events" or r["md5"] != "OK":
            continue
        sp = get_events(r["name"]).split()
        lines.append(
            f"| `{r['name']}` | {results.fmt(sp.train.num_events)} | "
            f"{results.fmt(sp.val.num_events)} | {results.fmt(sp.test.num_events)} | "
            f"{results.fmt(int(sp.new_node_mask.sum()))} | "
            f"{float(sp.val_inductive.float().mean()):.1%} | "
            f"{float(sp.test_inductive.float().mean()):.1%} |")
    try:
        from dyngraph.traffic import SIOUX_FALLS_BEST_TSTT, sioux_falls

        net = sioux_falls()
        lines += ["", "### Road network (TNTP)", "",
                  "| network | zones | nodes | links | total demand (trips) | "
                  "best-known total travel time |", "|---|---|---|---|---|---|",
                  f"| Sioux Falls | {net.num_zones} | {net.num_nodes} | "
                  f"{len(net.init)} | {results.fmt(float(net.demand.sum()))} | "
                  f"{results.fmt(float(SIOUX_FALLS_BEST_TSTT))} |"]
    except Exception as e:  # noqa: BLE001 - a broken loader shows on the page, not as a crash
        lines += ["", f"Sioux Falls could not be loaded: `{e}`"]

    lines += ["", "## Checksums", "",
              "`datasets/MD5SUMS`, each file re-hashed at build time:", "",
              "| file | md5 (MD5SUMS) | status |", "|---|---|---|"]
    for line in (data / "MD5SUMS").read_text().splitlines():
        if not line.strip():
            continue
        digest, name = line.split(maxsplit=1)
        name = name.removeprefix("./")
        path = data / name
        status = ("missing" if not path.exists() else
                  "OK" if _md5(path) == digest else "**MISMATCH**")
        lines.append(f"| `{name}` | `{digest}` | {status} |")
    prov = (data / "PROVENANCE.md").read_text()
    prov = re.sub(r"^(#+)", r"#\1", prov, flags=re.MULTILINE)  # nest below this page's h1
    prov = prov.replace("(datasets/", "(").replace("`MD5SUMS`", "`datasets/MD5SUMS`")
    lines += ["", "## Provenance, licences and terms", "",
              "*From `datasets/PROVENANCE.md`:*", "", prov]
    return {"datasets.md": "\n".join(lines)}


# --------------------------------------------------------------------------- benchmarks
BENCHMARKS = ROOT / "benchmarks"
# result files whose name does not start with the script's name
RESULT_ALIASES = {"pres_ablation": "pres_batch_size", "ddp": "ddp_scaling",
                  "evolvegcn_speed": "evolvegcn_vs_pyg_temporal"}


def _script_for(stem: str, scripts: list[str]) -> str | None:
    if formats.script_of(stem) in scripts:
        return formats.script_of(stem)
    for alias, script in RESULT_ALIASES.items():
        if stem.startswith(alias) and script in scripts:
            return script
    best = [s for s in scripts if stem == s or stem.startswith(s + "_") or stem.startswith(s)]
    return max(best, key=len) if best else None


def script_usage(script: str, stem: str = "") -> str | None:
    """A command line of a benchmark script's docstring (continuations joined): the first one
    that writes ``<stem>.json`` if any does, else the first one."""
    path = BENCHMARKS / f"{script}.py"
    if not path.is_file():
        return None
    lines = module_doc(path).splitlines()
    found: list[str] = []
    for i, line in enumerate(lines):
        s = line.strip()
        if re.match(r"^(OMP_NUM_THREADS=\S+ )?(PYTHONPATH=\S+ )?(\.venv/bin/)?python ", s):
            cmd = [s]
            while cmd[-1].endswith("\\") and i + 1 < len(lines):
                i += 1
                cmd[-1] = cmd[-1].rstrip("\\").rstrip()
                cmd.append(lines[i].strip())
            raw = " ".join(cmd)
            text = re.sub(r"\s+#.*$", "", raw)  # a trailing comment
            found.append((raw, " ".join(text.split())))
    # the command that writes this file, else one whose comment names it ("# ablation")
    words = set(stem.split("_")) - set(script.split("_")) - {"uci", "wikipedia", "cora"}
    best = [c for raw, c in found if stem and f"{stem}.json" in c] or [
        c for raw, c in found if any(w in raw for w in words if len(w) > 3)]
    if not best and any(len(w) > 3 for w in words):
        return None  # the file is a variant (another dataset) no documented command writes
    return (best or [c for _, c in found] or [None])[0]


def _nested_commands(data: object) -> list[str]:
    """Commands recorded inside the configurations of a file (``runs.<config>.command``)."""
    found: list[str] = []
    if isinstance(data, dict):
        for v in data.values():
            if isinstance(v, dict):
                found += [w["command"] for w in [v, *v.values()]
                          if isinstance(w, dict) and isinstance(w.get("command"), str)]
    return found


def _result_section(path: Path, images: dict[str, Path]) -> list[str]:
    lines = [f"#### {path.name}", ""]
    try:
        data = results.load(path)
    except (OSError, ValueError) as e:  # shown on the page; the rest of the site still builds
        return lines + ['!!! failure "This file could not be read"', "",
                        f"    `{type(e).__name__}: {e}`", ""]
    meta = results.metadata(data)
    if "command" in meta:
        lines.append(f"- **command:** `{meta['command']}`")
    elif "args" in meta:
        lines.append(f"- **arguments recorded in the file:** `{meta['args']}`")
    elif _nested_commands(data):
        lines.append("- **command:** recorded per configuration, shown with each table below")
    elif (usage := script_usage(_script_for(path.stem, _SCRIPTS()) or "", path.stem)):
        lines.append(f"- **command:** not recorded in the file; the script's documented "
                     f"usage is `{usage}`")
    else:
        lines.append("- **command:** not recorded in the file (see the usage above)")
    lines.append(f"- **machine:** {meta.get('machine', 'not recorded in the file')}")
    if "date" in meta:
        lines.append(f"- **date:** {meta['date']}")
    lines.append(f"- **raw data:** [{path.name}](data/{path.name})")
    for k in ("note", "description", "_stdev_note", "peer_loaded"):
        if isinstance(data, dict) and isinstance(data.get(k), str):
            lines.append(f"- **{k.strip('_').replace('_', ' ')}:** {results.fmt(data[k])}")
    lines.append("")
    found = results.tables_for(path.stem, data)
    own_reader = formats.reader_for(path.stem) is not None and found != results.tables(data)
    for title, recs in found:
        if title:
            lines += [f"*{results.fmt(title)}*", ""]
        lines += [results.markdown_table(recs, fold=own_reader), ""]
    if not found:
        lines += ["No table-shaped records in this file; see the raw data.", ""]
    return lines


def _SCRIPTS() -> list[str]:  # noqa: N802
    return sorted(p.stem for p in BENCHMARKS.glob("*.py"))


def benchmark_pages() -> dict[str, str]:
    """The Benchmarks page plus copies of every result JSON and PNG (as site files)."""
    scripts = sorted(p.stem for p in BENCHMARKS.glob("*.py"))
    files: dict[str, list[Path]] = {s: [] for s in scripts}
    other: list[Path] = []
    found = sorted(RESULTS.glob("*.json")) + sorted(RESULTS.glob("*.png")) \
        if RESULTS.is_dir() else []
    for p in found:
        s = _script_for(p.stem, scripts)
        (files[s] if s else other).append(p)
    extra: dict[str, bytes] = {}
    lines = ["# Benchmarks", "",
             "Every number on this page is read from `benchmarks/results/` when the site is "
             "built; none is typed by hand. A benchmark without a result file says "
             f"*{NOT_MEASURED}* and gives the command that produces one. Timings come from a "
             "2-core CPU machine shared with other jobs unless a file says otherwise: compare "
             "ratios measured in the same run, not absolute times across runs.", "",
             "To add results, run the script and write its JSON (and any PNG) into "
             "`benchmarks/results/`, named after the script (`ops.json`, `ops_backward.png`); "
             "a top-level `command` and `machine` entry in the JSON is shown with the table.",
             ""]
    measured = sum(1 for s in scripts if files[s])
    lines += [f"{measured} of {len(scripts)} benchmark scripts have results.", ""]
    for s in scripts:
        path = BENCHMARKS / f"{s}.py"
        first, rest = split_doc(module_doc(path))
        lines += [f"## {s}", "", first, ""]
        if rest:
            lines += ['??? note "What it measures and how to run it"', ""]
            lines += ["    " + ln if ln else "" for ln in doc_to_markdown(rest).splitlines()]
            lines.append("")
        jsons = [p for p in files[s] if p.suffix == ".json"]
        pngs = [p for p in files[s] if p.suffix == ".png"]
        if not jsons and not pngs:
            lines += [f'!!! warning "{NOT_MEASURED.capitalize()}"', "",
                      f"    No result file in `benchmarks/results/` yet. Produce one with "
                      f"`python {rel(path)}` (options above) and save its output as "
                      f"`benchmarks/results/{s}.json`.", ""]
        for p in jsons:
            lines += _result_section(p, {})
            extra[f"benchmarks/data/{p.name}"] = p.read_bytes()
        for p in pngs:
            lines += [f"![{p.stem}](img/{p.name})", "", f"*`benchmarks/results/{p.name}`*", ""]
            extra[f"benchmarks/img/{p.name}"] = p.read_bytes()
    if other:
        lines += ["## Other results", ""]
        for p in other:
            if p.suffix == ".json":
                lines += _result_section(p, {})
                extra[f"benchmarks/data/{p.name}"] = p.read_bytes()
            else:
                lines += [f"![{p.stem}](img/{p.name})", ""]
                extra[f"benchmarks/img/{p.name}"] = p.read_bytes()
    pages: dict[str, str | bytes] = {"benchmarks/index.md": "\n".join(lines)}
    pages.update(extra)
    return pages


# --------------------------------------------------------------------------- model zoo
def _memory_specs(model: str) -> list[dict]:
    """The memory_models benchmark first; else plain training at batch 200 in the PRES runs."""
    return [dict(file="memory_models", where={"model": model}, metric=["test_ap", "ap"],
                 label="test AP", also=[("test_mrr", "MRR")]),
            dict(file="pres_", where={"model": model, "batch_size": 200, "mode": "none"},
                 metric=["test_ap"], label="test AP")]


def _egcn_specs(model: str, short: str) -> list[dict]:
    """EvolveGCN cells: link prediction on UCI (MAP, MRR, paper beside), edge classification
    on Bitcoin OTC (F1), training speed against PyG Temporal."""
    return [dict(file="evolvegcn.json", where={"model": model, "task": "linkpred",
                                                "dataset": "uci"},
                 metric=["map"], label="link pred. MAP", also=[("mrr", "MRR")], group=0),
            dict(file="evolvegcn.json", where={"model": model, "task": "edgecls",
                                                "dataset": "bitcoin-otc"},
                 metric=["f1"], label="edge cls. F1", group=1),
            dict(file="evolvegcn_vs_pyg_temporal", where={"model": f"EvolveGCN-{short}"},
                 metric=["speedup_cached"], label="training speed vs PyG Temporal", unit="×",
                 also=[("speedup_uncached", "recomputing the normalisation")], group=2)]


# class name -> (paper, task, [result specs]). A spec names the result file (prefix), the
# field values a record must have and the metric keys to read (first found wins); specs of
# the same ``group`` are alternatives, different groups are all shown. ``also``: more fields
# of the same records; ``paper_<metric>`` fields are shown as the published value;
# ``pick="max"``: the best record (named by ``name``) instead of the mean over records.
ZOO: dict[str, tuple[str, str, list[dict]]] = {
    "TGN": ("Rossi et al., *Temporal Graph Networks*, ICML-W 2020",
            "continuous-time link prediction", [
                *_memory_specs("tgn"),
                dict(file="tgn_wikipedia", where={"model": "tgn"}, metric=["test_ap"],
                     label="test AP", group=1),
                dict(file="tgn_vs_pyg", where={"implementation": "dyngraph"},
                     metric=["speed_ratio_vs_pyg"], label="training speed vs PyG's TGN",
                     unit="×", group=2)]),
    "JODIE": ("Kumar et al., *JODIE*, KDD 2019", "continuous-time link prediction",
              _memory_specs("jodie")),
    "DyRep": ("Trivedi et al., *DyRep*, ICLR 2019", "continuous-time link prediction",
              _memory_specs("dyrep")),
    "APAN": ("Wang et al., *APAN*, SIGMOD 2021", "continuous-time link prediction",
             _memory_specs("apan")),
    "MemoryModel": ("composable memory model (TGN framework)", "continuous-time link "
                    "prediction", []),
    "PRES": ("Su et al., *PRES*, ICLR 2024", "large temporal batches for memory models",
             [dict(where={"model": "tgn", "batch_size": 1600, "mode": "both"},
                   metric=["test_ap"], label="TGN test AP at batch 1600"),
              dict(where={"model": "tgn", "batch_size": 1600, "mode": "none"},
                   metric=["test_ap"], label="without PRES", group=1)]),
    "GaussianMixtureTransition": ("Su et al., *PRES*, ICLR 2024",
                                  "PRES memory-transition model", []),
    "EvolveGCNO": ("Pareja et al., *EvolveGCN*, AAAI 2020", "snapshot link prediction / "
                   "edge classification", _egcn_specs("evolvegcn-o", "O")),
    "EvolveGCNH": ("Pareja et al., *EvolveGCN*, AAAI 2020", "snapshot link prediction / "
                   "edge classification", _egcn_specs("evolvegcn-h", "H")),
    "EvolveGCN": ("Pareja et al., *EvolveGCN*, AAAI 2020", "stacked EvolveGCN layers", []),
    "MatGRUCell": ("Pareja et al., *EvolveGCN*, AAAI 2020", "weight evolution (GRU)", []),
    "MatLSTMCell": ("Pareja et al., *EvolveGCN*, AAAI 2020", "weight evolution (LSTM)", []),
    "CGS": ("Park et al., *Convergent Graph Solvers*, ICLR 2022",
            "fixed points on graphs, node regression/classification",
            [dict(file="implicit_node_classification", where={"model": "cgs", "dataset": ds},
                  metric=["test_acc"], label=f"{ds} test accuracy", group=i)
             for i, ds in enumerate(("cora", "citeseer"))]),
    "IGNN": ("Gu et al., *Implicit Graph Neural Networks*, NeurIPS 2020",
             "node classification",
             [dict(file="implicit_node_classification", where={"model": "ignn", "dataset": ds},
                   metric=["test_acc"], label=f"{ds} test accuracy", group=i)
              for i, ds in enumerate(("cora", "citeseer"))]),
    "GeneralAttentionConv": ("Zhou et al., *Auto-GNN*, 2019 (search space operators)",
                             "message passing with searchable attention", []),
    "EdgeAttention": ("Zhou et al., *Auto-GNN*, 2019", "attention coefficients", []),
    "SearchedGNN": ("Zhou et al., *Auto-GNN*, 2019", "node classification (searched)",
                    [dict(file="nas_cora", where={"model": "searched", "search": "rcc+sharing",
                                                  "trials": 100},
                          metric=["test_acc"], label="test accuracy, RCC + sharing, 100 trials"),
                     dict(file="nas_citeseer", where={"model": "searched",
                                                      "search": "rcc+sharing", "trials": 100},
                          group=1, metric=["test_acc"],
                          label="test accuracy, RCC + sharing, 100 trials"),
                     dict(file="nas_cora", where={"model": "AGNN"}, group=2,
                          metric=["paper_test_acc_pct"], label="published Auto-GNN (%)"),
                     dict(where={"model": "rcc"}, metric=["test_acc", "test_accuracy"],
                          label="")]),
    "EdgeWeightedGINConv": ("Madadi & Correia, 2024 (GIN: Xu et al., ICLR 2019)",
                            "edge-weighted message passing", []),
    "FlowGNN": ("Madadi & Correia, 2024", "surrogate of user-equilibrium link flows",
                [dict(file="surrogate_accuracy", where={"model": "flowgnn"},
                      metric=["ttt_accuracy"], label="best GIN surrogate: TTT accuracy",
                      also=[("flow_r2", "flow R²")], pick="max", name="config"),
                 dict(file="surrogate_accuracy", where={"config": "paper"},
                      metric=["ttt_accuracy"], label="paper's configuration: TTT accuracy",
                      also=[("flow_r2", "flow R²")], group=1),
                 dict(file="surrogate_accuracy", where={"model": "published"}, group=2,
                      metric=["ttt_accuracy"], label="published: TTT accuracy",
                      also=[("flow_r2", "flow R²")])]),
    "TimeEncoder": ("Xu et al., *TGAT*, ICLR 2020", "time encoding", []),
    "LinkDecoder": ("Rossi et al., *TGN*, 2020", "link scoring", []),
    "GraphAttentionEmbedding": ("Rossi et al., *TGN*, 2020", "temporal graph attention", []),
    "TimeProjectionEmbedding": ("Kumar et al., *JODIE*, KDD 2019", "time projection", []),
    "StructuralAttention": ("Trivedi et al., *DyRep*, ICLR 2019", "structural attention", []),
    "MailboxAttentionAggregator": ("Wang et al., *APAN*, SIGMOD 2021", "mailbox attention",
                                   []),
}

# baselines measured by the same scripts (not dyngraph classes): shown under the zoo table
BASELINES: dict[str, tuple[str, list[dict]]] = {
    "static GCN, EvolveGCN protocol": ("Kipf & Welling, ICLR 2017", [
        dict(file="evolvegcn.json", where={"model": "gcn", "task": "linkpred",
                                            "dataset": "uci"},
             metric=["map"], label="link pred. MAP", also=[("mrr", "MRR")]),
        dict(file="evolvegcn.json", where={"model": "gcn", "task": "edgecls",
                                            "dataset": "bitcoin-otc"},
             metric=["f1"], label="edge cls. F1", group=1)]),
    "GCN, Auto-GNN protocol": ("Kipf & Welling, ICLR 2017", [
        dict(file="nas_cora", where={"model": "GCN"}, metric=["test_acc"],
             label="test accuracy", also=[("paper_test_acc_pct", "published (%)")])]),
    "GAT, Auto-GNN protocol": ("Veličković et al., ICLR 2018", [
        dict(file="nas_cora", where={"model": "GAT"}, metric=["test_acc"],
             label="test accuracy", also=[("paper_test_acc_pct", "published (%)")])]),
    "PyG's TGN recipe (examples/tgn.py)": ("Rossi et al., 2020; PyG", [
        dict(file="tgn_vs_pyg", where={"implementation": "pyg"}, metric=["test_ap"],
             label="test AP")]),
}


# which benchmark script (section of the Benchmarks page) measures each model
ZOO_SOURCE = {
    "TGN": "memory_models", "JODIE": "memory_models", "DyRep": "memory_models",
    "APAN": "memory_models", "PRES": "pres_batch_size", "EvolveGCNO": "evolvegcn_results",
    "EvolveGCNH": "evolvegcn_results", "SearchedGNN": "nas_cora",
    "FlowGNN": "surrogate_accuracy",
}
ZOO_EXAMPLE = {"CGS": "implicit_node_classification", "IGNN": "implicit_node_classification"}


def _not_measured(name: str) -> str:
    if name in ZOO_SOURCE:
        s = ZOO_SOURCE[name]
        return f"{NOT_MEASURED} — [`benchmarks/{s}.py`](benchmarks/index.md#{s})"
    if name in ZOO_EXAMPLE:
        s = ZOO_EXAMPLE[name]
        return (f"{NOT_MEASURED} in `benchmarks/results/` — the tutorial "
                f"[`examples/{s}.py`](tutorials/{s}.md) prints it")
    return NOT_MEASURED


def _value(v: object) -> float | None:
    if isinstance(v, formats.Stat):
        return v.mean
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return None if v != v else float(v)  # NaN


def _match(rec: dict, where: dict) -> bool:
    for k, v in where.items():
        got = rec.get(k)
        if isinstance(v, str):
            if not isinstance(got, str) or got.lower() != v.lower():
                return False
        elif got != v:
            return False
    return True


def _summarise(recs: list[dict], key: str) -> str:
    """One field over the matching records of one file: a recorded mean ± std as it is,
    several plain numbers (seeds) as mean ± sample std."""
    import statistics

    vals = [r[key] for r in recs if _value(r.get(key)) is not None]
    if not vals:
        return ""
    if len(vals) == 1:
        return results.fmt(vals[0])
    xs = [_value(v) for v in vals]
    out = results.fmt(statistics.fmean(xs))
    return out + f" ± {results.fmt(statistics.stdev(xs))}"


def _lookup_one(spec: dict, records: list[tuple[str, dict]]) -> str | None:
    for metric in spec["metric"]:
        hits = [(f, r) for f, r in records if f.startswith(spec.get("file", ""))
                and _match(r, spec["where"]) and _value(r.get(metric)) is not None]
        if not hits:
            continue
        fname = hits[0][0]
        recs = [r for f, r in hits if f == fname]
        if spec.get("pick") == "max":
            recs = [max(recs, key=lambda r: _value(r[metric]))]
        val = _summarise(recs, metric) + spec.get("unit", "")
        label = spec.get("label") or metric.replace("_", " ")
        text = f"{label} {val}"
        paper = {r.get(f"paper_{metric}") for r in recs} - {None}
        if len(paper) == 1:
            text += f" (paper {results.fmt(paper.pop())})"
        for extra in spec.get("also", []):
            extra, name = extra if isinstance(extra, tuple) else (extra, extra.replace("_", " "))
            v = _summarise(recs, extra)
            if v:
                text += f", {name} {v}{spec.get('unit', '')}"
                p = {r.get(f"paper_{extra}") for r in recs} - {None}
                if len(p) == 1:
                    text += f" (paper {results.fmt(p.pop())})"
        ds = sorted({str(r["dataset"]) for r in recs if r.get("dataset") is not None})
        where = [f"{k}={v}" for k, v in spec["where"].items()
                 if k not in ("model", "dataset", "task", "implementation", "search", "trials")]
        if spec.get("pick") == "max" and spec.get("name"):
            where.append(f"{spec['name']} {recs[0].get(spec['name'])}")
        ns = {r[metric].n for r in recs if isinstance(r.get(metric), formats.Stat)} - {None}
        if len(ns) == 1:
            ds.append(f"n={ns.pop()}")
        ctx = "; ".join(x for x in (", ".join(ds), ", ".join(where)) if x)
        return (f"{text} (n={len(recs)}{'; ' + ctx if ctx else ''}; "
                f"[{fname}](benchmarks/data/{fname}))") if len(recs) > 1 and not any(
                    isinstance(r.get(metric), formats.Stat) for r in recs) else (
                f"{text} ({ctx + '; ' if ctx else ''}[{fname}](benchmarks/data/{fname}))")
    return None


def _lookup(specs: list[dict], records: list[tuple[str, dict]]) -> str:
    """Every group's first spec that finds a figure, joined; NOT_MEASURED when none does."""
    found: dict[int, str] = {}
    for spec in specs:
        g = spec.get("group", 0)
        if g in found or not spec["where"]:
            continue
        text = _lookup_one(spec, records)
        if text:
            found[g] = text
    return "<br>".join(found[g] for g in sorted(found)) if found else NOT_MEASURED


def model_zoo_page() -> dict[str, str]:
    import torch

    records = results.all_records(RESULTS) if RESULTS.is_dir() else []
    rows = []
    for e in api_index.entries():
        if not (e.documented_here and inspect.isclass(e.obj)
                and issubclass(e.obj, torch.nn.Module)):
            continue
        paper, task, specs = ZOO.get(e.name, ("–", "building block", []))
        result = _lookup(specs, records) if specs else "–"
        if result == NOT_MEASURED:
            result = _not_measured(e.name)
        row = f"| [`{e.name}`][{e.home}] | `{e.package}` | {paper} | {task} | {result} |"
        rows.append((0 if specs else 1 if e.name in ZOO else 2, row))
    rows = [r for _, r in sorted(rows, key=lambda x: x[0])]
    base = [f"| {name} | {paper} | {_lookup(specs, records)} |"
            for name, (paper, specs) in BASELINES.items()]
    lines = ["---", "hide:", "  - toc", "---", "", "# Model zoo", "",
             "Every public `torch.nn.Module` of dyngraph (found in the packages' `__all__` when "
             "the site is built), the paper it implements, the task it serves, and its measured "
             "result on bundled real data, read from `benchmarks/results/` (mean ± std over "
             "seeds as recorded in the file, or over the runs of one file with n given; "
             "*paper* is the published figure stored next to the measurement; "
             f"*{NOT_MEASURED}* when no result file has it yet — the "
             "[Benchmarks](benchmarks/index.md) page gives the command, the machine and the "
             "full tables). A dash means the class is a component, evaluated through the model "
             "that contains it. Speed ratios come from a shared 2-core CPU: compare them, not "
             "absolute times.", "",
             "| model / layer | package | paper | task | measured on bundled data |",
             "|---|---|---|---|---|", *rows, "",
             "## Baselines measured with the same protocols", "",
             "Not part of dyngraph's API: the reference models the benchmark scripts train "
             "next to dyngraph's, on the same data.", "",
             "| baseline | paper | measured on bundled data |", "|---|---|---|", *base, ""]
    return {"model-zoo.md": "\n".join(lines)}


# --------------------------------------------------------------------------- installation
def installation_page(template: str) -> dict[str, str]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    rows = ["| extra | installs |", "|---|---|"]
    rows += [f"| `{k}` | {', '.join(f'`{r}`' for r in v)} |" for k, v in extras.items()]
    speed = []
    for script, what in (("ops", "dyngraph.ops backends (torch / torch-scatter / native) per op"),
                         ("kernels", "native kernels vs plain torch vs torch-scatter")):
        found = sorted(RESULTS.glob(f"{script}*.json")) if RESULTS.is_dir() else []
        status = (f"measured: {', '.join(f'`{p.name}`' for p in found)}" if found
                  else f"*{NOT_MEASURED}* (`python benchmarks/{script}.py`)")
        speed.append(f"- [{what}](benchmarks/index.md#{script}) — {status}")
    page = template.replace("<!-- extras-table -->", "\n".join(rows))
    return {"installation.md": page.replace("<!-- backend-speed -->", "\n    ".join(speed))}


# --------------------------------------------------------------------------- entry point
def all_pages(installation_template: str = "<!-- extras-table -->") -> dict[str, str | bytes]:
    pages: dict[str, str | bytes] = {}
    for fn in (api_pages, tutorial_pages, cli_page, datasets_page, benchmark_pages,
               model_zoo_page):
        pages.update(fn())
    pages.update(installation_page(installation_template))
    return pages


def _main() -> None:
    import mkdocs_gen_files

    template = (HERE.parent / "installation.md").read_text()
    for path, content in all_pages(template).items():
        mode = "wb" if isinstance(content, bytes) else "w"
        with mkdocs_gen_files.open(path, mode) as f:
            f.write(content)


if __name__ in ("__main__", "<run_path>"):
    _main()
