"""Summary of scripts/noisy_neighbour_bench.sh's noisy_samples.tsv: per
engine (wbs wait choice, variant, sparsity; ORT) the quiet and noisy medians
of all samples, the slowdown noisy / quiet, and ORT dense / wbs in each
condition, with the per-round slowdowns."""
import collections
import json
import statistics
import sys

samples = collections.defaultdict(list)  # (mode, engine) -> ms
rounds = collections.defaultdict(lambda: collections.defaultdict(list))
r = "0"
for line in open(sys.argv[1]):
    if line.startswith("# round"):
        r = line.split()[2]
        continue
    if line.startswith("# wait"):
        print(line.strip()[2:])
        continue
    p = line.rstrip("\n").split("\t")
    if len(p) < 3:
        continue
    mode, eng = p[0], p[1]
    if eng == "ort":
        try:
            j = json.loads(p[2])
        except ValueError:
            continue
        ms = j["latency_ms"]["samples"]
        key = "ort dense"
    elif len(p) >= 7 and p[2] == "sample":
        # sample model threads sparsity(or variant label) ms
        ms = [float(p[6])]
        key = f"{eng} {p[5]}"
    else:
        continue
    samples[(mode, key)] += ms
    rounds[(mode, key)][r] += ms

med = statistics.median
keys = sorted({k for _, k in samples}, key=lambda k: (k.startswith("ort"), k))
print(f"{'engine':<34} {'quiet ms':>9} {'noisy ms':>9} {'noisy/quiet':>11}  per round")
for k in keys:
    q, n = samples.get(("quiet", k)), samples.get(("noisy", k))
    if not q or not n:
        continue
    per = [med(rounds[("noisy", k)][x]) / med(rounds[("quiet", k)][x])
           for x in rounds[("quiet", k)] if rounds[("noisy", k)].get(x)]
    print(f"{k:<34} {med(q):9.2f} {med(n):9.2f} {med(n) / med(q):11.3f}  "
          f"{' '.join(f'{v:.2f}' for v in per)} (n={len(q)}/{len(n)})")
for mode in ("quiet", "noisy"):
    o = samples.get((mode, "ort dense"))
    if not o:
        continue
    line = [f"{k.split(' ', 1)[0]} {k.split(' ', 1)[1]} {med(o) / med(samples[(mode, k)]):.2f}x"
            for k in keys if not k.startswith("ort") and samples.get((mode, k))]
    print(f"ORT dense / wbs, {mode}: " + "; ".join(line))
