#!/usr/bin/env python3
"""Renders the "End-to-end block-sparse" section of docs/BENCHMARKS.md.

    python3 scripts/bench_sparse_report.py RESULTS_DIR/sparse [--notes OLD.md] > section.md

Reads what scripts/bench.sh step 4 wrote into RESULTS_DIR/sparse:
  wbs_<model>_t<threads>_r<k>.tsv    wbs_bench_models --sparsity=0,50,75
                                     --interleaved=N (paired single-run samples)
  ort_<model>_t<threads>_r<k>.json   tools/ort/run.js output (dense model)
  profile_<model>_t<threads>.txt     wbs_bench_models --profile_nodes (per node)
  machine.txt, commands.txt
Every number comes from those files; the block between
"<!-- e2e-sparse-notes -->" and "<!-- /e2e-sparse-notes -->" of --notes (the
previous report) is carried over. Statistic: median of all single-run
samples over all rounds, both sides alike.
"""
import glob
import json
import os
import re
import statistics
import sys

TARGET_MODEL, TARGET_THREADS, TARGET_SPARSITY, TARGET_SPEEDUP = "resnet50", 2, 50, 1.8
BEGIN, END = "<!-- e2e-sparse -->", "<!-- /e2e-sparse -->"
NOTES_BEGIN, NOTES_END = "<!-- e2e-sparse-notes -->", "<!-- /e2e-sparse-notes -->"


def wbs_samples(files):
    """(sparsity %) -> (samples in ms, label), from wbs_bench_models --interleaved output."""
    out = {}
    for f in files:
        for line in open(f):
            c = line.rstrip("\n").split("\t")
            if c[0] == "sample" and len(c) == 5:
                out.setdefault(int(c[3]), ([], ""))[0].append(float(c[4]))
            elif c[0] == "label" and len(c) == 5:
                out[int(c[3])] = (out.get(int(c[3]), ([], ""))[0], c[4])
    return out


def ort_samples(files):
    s = []
    for f in files:
        try:
            s += json.load(open(f))["latency_ms"]["samples"]
        except (OSError, ValueError, KeyError):
            pass
    return s


def med(xs):
    return statistics.median(xs) if xs else None


def fmt(x, d=1):
    return "n/a" if x is None else f"{x:.{d}f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: bench_sparse_report.py RESULTS_DIR/sparse [--notes OLD.md]")
    d = sys.argv[1]
    notes = f"{NOTES_BEGIN}\n_(hand-written analysis goes here; kept across runs)_\n{NOTES_END}"
    if "--notes" in sys.argv:
        old_path = sys.argv[sys.argv.index("--notes") + 1]
        if os.path.exists(old_path):
            m = re.search(re.escape(NOTES_BEGIN) + r"[\s\S]*?" + re.escape(NOTES_END), open(old_path).read())
            if m:
                notes = m.group(0)
    machine = {}
    if os.path.exists(os.path.join(d, "machine.txt")):
        for line in open(os.path.join(d, "machine.txt")):
            k, _, v = line.rstrip("\n").partition("=")
            machine[k] = v
    keys = sorted({(m.group(1), int(m.group(2)))
                   for f in os.listdir(d) for m in [re.match(r"^wbs_(.+)_t(\d+)_r\d+\.tsv$", f)] if m})
    sparsities = [int(s) for s in machine.get("sparsities", "50 75").split()]

    L = [BEGIN, "## End-to-end block-sparse", ""]
    L.append(
        "Whole models at batch 1: our dense runtime (oneDNN), the same model after one-shot block "
        "sparsification (`sparse::Sparsify`: 8x8 blocks, L2 scores, the given fraction of the blocks of "
        "every blockable layer zeroed except the first conv, every block-row/column kept alive), run by "
        "the same runtime, which picks block-sparse or oneDNN per layer with its cost rule "
        "(`runtime/ops_sparse.h`), and ONNX Runtime on the dense model. Medians of single timed runs "
        f"({machine.get('reps', '?')} per configuration and round, {machine.get('rounds', '?')} rounds "
        "alternating wbs and ORT); wbs's dense, 50% and 75% sessions run in turn (paired samples), "
        "all in the same `make bench` run. Speed-up = ORT dense median / ours.")
    L.append("")
    L.append(f"Measured {machine.get('date', '?')} at commit {machine.get('commit', '?')}; load average "
             f"{machine.get('load_start', '?')} at the start of this step, {machine.get('load_end', '?')} at "
             "its end (2 logical CPUs shared with other jobs: absolute times move, the ratios come from "
             "samples taken minutes apart).")
    L.append("")
    head = "| model | threads | ORT dense ms | wbs dense ms | " + " | ".join(
        f"wbs {s}% ms (sparse layers)" for s in sparsities) + " | " + " | ".join(
        f"{s}%: vs ORT / vs wbs dense" for s in sparsities) + " |"
    L.append(head)
    L.append("|---|---:|---:|---:|" + "---:|" * (2 * len(sparsities)))
    target = None
    ort_best = {}  # model -> ORT's lowest median over thread counts
    for (m, t) in keys:
        w = wbs_samples(sorted(glob.glob(os.path.join(d, f"wbs_{m}_t{t}_r*.tsv"))))
        o = med(ort_samples(sorted(glob.glob(os.path.join(d, f"ort_{m}_t{t}_r*.json")))))
        if o is not None:
            ort_best[m] = min(o, ort_best.get(m, o))
        dense = med(w.get(0, ([], ""))[0])
        cells, ratios = [], []
        for s in sparsities:
            samples, label = w.get(s, ([], ""))
            ms = med(samples)
            mm = re.search(r"(\d+) block-sparse", label)
            cells.append(f"{fmt(ms)} ({mm.group(1) if mm else '?'})")
            ratios.append(f"{fmt(ratio(o, ms), 2)}x / {fmt(ratio(dense, ms), 2)}x")
            if (m, t, s) == (TARGET_MODEL, TARGET_THREADS, TARGET_SPARSITY):
                target = (o, ms)
        L.append(f"| {m} | {t} | {fmt(o)} | {fmt(dense)} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    L.append("")
    def verdict(x):
        return "met" if x >= TARGET_SPEEDUP else f"missed by {100 * (1 - x / TARGET_SPEEDUP):.0f}%"

    if target is not None and None not in target:
        o, ms = target
        best = ort_best.get(TARGET_MODEL, o)
        L.append(f"**Target** (issue 3): {TARGET_MODEL} at {TARGET_SPARSITY}% block sparsity, batch 1, "
                 f"{TARGET_THREADS} threads, >= {TARGET_SPEEDUP}x faster than ORT dense: "
                 f"**{o / ms:.2f}x against ORT at {TARGET_THREADS} threads ({verdict(o / ms)}); "
                 f"{best / ms:.2f}x against ORT's fastest thread count ({best:.1f} ms; {verdict(best / ms)})**. "
                 "ORT's intra-op threads spin, so on a loaded machine its 2-thread run can be slower than "
                 "its 1-thread run; the second figure is the fair one then.")
        L.append("")

    # Per-layer profile: each node alone (bench_common.h ProfileNodes), dense vs sparse model.
    for f in sorted(glob.glob(os.path.join(d, "profile_*.txt"))):
        runs, cur = {}, None
        for line in open(f):
            if line.startswith("# "):
                mm = re.search(r"# (\S+) threads=(\d+) .*sparsity=(\d+)%", line)
                cur = int(mm.group(3)) if mm else None
                runs[cur] = {"nodes": [], "model": None}
            elif line.startswith("node\t") and cur is not None:
                _, op, impl, name, ms = line.rstrip("\n").split("\t")
                runs[cur]["nodes"].append((op, impl, name, float(ms)))
            elif line.startswith("model\t") and cur is not None:
                runs[cur]["model"] = float(line.split("\t")[1])
        if 0 not in runs or len(runs) < 2:
            continue
        mm = re.match(r"profile_(.+)_t(\d+)\.txt", os.path.basename(f))
        sp = max(k for k in runs if k)
        dense = {n[2]: n for n in runs[0]["nodes"]}
        rows = [(n, dense.get(n[2])) for n in runs[sp]["nodes"] if n[0] in ("Conv", "Gemm", "MatMul")]
        conv_dense = sum(dd[3] for n, dd in rows if dd)
        conv_sparse = sum(n[3] for n, _ in rows)
        other_dense = sum(n[3] for n in runs[0]["nodes"] if n[0] not in ("Conv", "Gemm", "MatMul"))
        other_sparse = sum(n[3] for n in runs[sp]["nodes"] if n[0] not in ("Conv", "Gemm", "MatMul"))
        kept_dense = [n for n, _ in rows if not n[1].startswith("sparse")]
        L.append(f"### Per layer: {mm.group(1)}, {mm.group(2)} thread(s), dense vs {sp}%")
        L.append("")
        L.append("Each node timed alone (`--profile_nodes`, median of its runs, its own output allocation "
                 "included), so the sums approximate the model's latency. Conv/Gemm: "
                 f"{conv_dense:.1f} ms dense -> {conv_sparse:.1f} ms at {sp}% "
                 f"({ratio(conv_dense, conv_sparse) or 0:.2f}x); other nodes {other_dense:.1f} -> "
                 f"{other_sparse:.1f} ms; whole model {fmt(runs[0]['model'])} -> {fmt(runs[sp]['model'])} ms. "
                 f"Layers left dense at {sp}%: "
                 + (", ".join(f"`{n[2]}` ({n[1]})" for n in kept_dense) if kept_dense else "none") + ".")
        L.append("")
        L.append(f"| layer | op | dense impl | dense ms | {sp}% impl | {sp}% ms | speed-up |")
        L.append("|---|---|---|---:|---|---:|---:|")
        for n, dd in rows:
            L.append(f"| {n[2]} | {n[0]} | {dd[1] if dd else '?'} | {fmt(dd[3] if dd else None, 3)} | {n[1]} | "
                     f"{fmt(n[3], 3)} | {fmt(ratio(dd[3] if dd else None, n[3]), 2)}x |")
        L.append("")
    L.append(notes)
    L.append("")
    L.append("Commands (BUILD = the build directory; `make bench` runs all of them):")
    L.append("")
    L.append("```")
    if os.path.exists(os.path.join(d, "commands.txt")):
        seen = []
        for line in open(os.path.join(d, "commands.txt")):
            # One line per distinct command shape (rounds and files differ only by numbers).
            key = re.sub(r"_r\d+\.json", "_rK.json", line.strip())
            if key not in seen:
                seen.append(key)
        L.extend(seen)
    L.append("```")
    L.append(END)
    print("\n".join(L))


if __name__ == "__main__":
    main()
