"""Summary of scripts/e2e_ort_rounds.sh's samples.tsv: medians of all samples
per thread count, ORT dense over wbs 50%, and the per-round ratios."""
import collections
import json
import statistics
import sys

samples = collections.defaultdict(list)
rounds = collections.defaultdict(lambda: collections.defaultdict(list))
waits = collections.Counter()
r = "0"
for line in open(sys.argv[1]):
    if line.startswith("# round"):
        r = line.split()[2]
        continue
    if line.startswith("# auto:"):
        waits[line[len("# auto:"):].strip()] += 1
        continue
    p = line.rstrip("\n").split("\t")
    if p[0].startswith("wbs") and len(p) >= 6:
        k = (p[0], p[3], p[4])  # variant, threads, sparsity
    elif p[0] == "ort":
        try:
            j = json.loads(p[1])
        except (IndexError, ValueError):
            continue
        k = ("ort", str(j["threads"]), "0")
        samples[k] += j["latency_ms"]["samples"]
        rounds[k][r] += j["latency_ms"]["samples"]
        continue
    else:
        continue
    samples[k].append(float(p[5]))
    rounds[k][r].append(float(p[5]))

for w, n in waits.items():
    print(f"wbsA wait choice: {w} ({n} runs)")
for t in sorted({k[1] for k in samples}, reverse=True):
    o = samples.get(("ort", t, "0"))
    if not o:
        continue
    om = statistics.median(o)
    for v in ("wbsP", "wbsA"):
        d, s = samples.get((v, t, "0")), samples.get((v, t, "50"))
        if not d or not s:
            continue
        dm, sm = statistics.median(d), statistics.median(s)
        per = [statistics.median(rounds[("ort", t, "0")][x]) / statistics.median(rounds[(v, t, "50")][x])
               for x in rounds[("ort", t, "0")] if rounds[(v, t, "50")].get(x)]
        print(f"T={t} {v}: ORT dense {om:.1f} ms, wbs dense {dm:.1f}, wbs 50% {sm:.1f}; "
              f"ORT / wbs 50% {om / sm:.2f}x, wbs dense / 50% {dm / sm:.2f}x; "
              f"per round {' '.join(f'{x:.2f}' for x in per)}")
