#!/usr/bin/env python3
"""Checks for tests/report/report_test.sh.

  check_summary.py partial SUMMARY HTML       only dense/sparse ran: the rest is null / "not run"
  check_summary.py full SUMMARY HTML          every stage's numbers present and equal to the raw files
  check_summary.py dom SUMMARY DOM PNG        the rendered DOM shows every key number; PNG is valid
"""
import json
import math
import os
import re
import struct
import sys
from html.parser import HTMLParser

KEYS = ["dense_accuracy", "sparse_accuracy", "dense_int8_accuracy", "sparse_int8_accuracy",
        "block_sparsity", "cpu_speedup_fp32", "cpu_speedup_int8", "aie_dense_ms", "aie_sparse_ms",
        "aie_speedup", "sim_bit_exact", "sim_cycles", "estimate_cycles", "sim_vs_estimate"]
# How the page formats each key (report/html.cc, FormatValue).
FORMAT = {
    "dense_accuracy": "pct", "sparse_accuracy": "pct", "dense_int8_accuracy": "pct",
    "sparse_int8_accuracy": "pct", "block_sparsity": "pct", "cpu_speedup_fp32": "x",
    "cpu_speedup_int8": "x", "aie_dense_ms": "ms", "aie_sparse_ms": "ms", "aie_speedup": "x",
    "sim_bit_exact": "bool", "sim_cycles": "int", "estimate_cycles": "int", "sim_vs_estimate": "ratio",
}


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def formatted(key, v):
    f = FORMAT[key]
    if f == "pct":
        return "%.2f%%" % (v * 100)
    if f == "x":
        return "%.2fx" % v
    if f == "ms":
        return "%.4f ms" % v
    if f == "int":
        return "%.0f" % v
    if f == "ratio":
        return "%.3f" % v
    return "yes" if v else "NO"


class KeyCells(HTMLParser):
    """Collects data-key elements (value attribute and text), figures and SVG rects."""

    def __init__(self):
        super().__init__()
        self.cells, self.stack, self.figures, self.svgs, self.timeline_rects = {}, [], 0, 0, 0
        self.in_timeline = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg":
            self.svgs += 1
        if a.get("id") == "timeline":
            self.in_timeline = 1
        if self.in_timeline and tag == "rect":
            self.timeline_rects += 1
        if tag == "figure" and "data-layer" in a:
            self.figures += 1
        if "data-key" in a:
            self.stack.append([a["data-key"], a.get("data-value", ""), ""])

    def handle_data(self, data):
        if self.stack:
            self.stack[-1][2] += data

    def handle_endtag(self, tag):
        if tag == "td" and self.stack:
            k, v, t = self.stack.pop()
            self.cells[k] = (v, t.strip())
        if tag == "div" and self.in_timeline:
            self.in_timeline = 0


def check_cells(summary, cells):
    for k in KEYS:
        if k not in cells:
            fail("page has no element data-key=%s" % k)
        v, text = cells[k]
        want = summary["key"][k]
        if want is None:
            if text != "not run" or v != "":
                fail("%s: summary is null but the page shows %r (data-value %r)" % (k, text, v))
            continue
        if isinstance(want, bool):
            if v != ("true" if want else "false"):
                fail("%s: data-value %r, summary %r" % (k, v, want))
        elif float(v) != float(want):
            fail("%s: data-value %r != summary %r" % (k, v, want))
        if text != formatted(k, want):
            fail("%s: page shows %r, expected %r" % (k, text, formatted(k, want)))


def load(summary_path, html_path):
    s = json.load(open(summary_path))
    if set(s["key"]) != set(KEYS):
        fail("summary keys %s" % sorted(s["key"]))
    p = KeyCells()
    p.feed(open(html_path, encoding="utf-8").read())
    return s, p


def near(a, b, what):
    if not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12):
        fail("%s: %r vs %r" % (what, a, b))


def main():
    mode, summary_path, html_path = sys.argv[1:4]
    s, p = load(summary_path, html_path)
    out = os.path.dirname(summary_path)
    key = s["key"]
    if s["problems"]:
        fail("problems: %s" % s["problems"])
    check_cells(s, p.cells)
    # The masks: block_sparsity is the zero fraction over every masked layer.
    if not s["layers"]:
        fail("no masked layers read from sparse/model.onnx")
    zero = sum(l["zero_blocks"] for l in s["layers"])
    blocks = sum(l["blocks"] for l in s["layers"])
    near(key["block_sparsity"], zero / blocks, "block_sparsity")
    if not 0.4 <= key["block_sparsity"] <= 0.6:
        fail("block sparsity %r for --sparsity 0.5" % key["block_sparsity"])
    if p.figures != len(s["layers"]):
        fail("%d mask pictures for %d layers" % (p.figures, len(s["layers"])))
    if mode == "partial":
        for k in KEYS:
            if k != "block_sparsity" and key[k] is not None:
                fail("partial run: %s should be null, is %r" % (k, key[k]))
        for st in ["int8", "aie", "sim", "bench"]:
            if s["stages"][st]["status"] != "not run":
                fail("stage %s: %r" % (st, s["stages"][st]))
        return
    if mode == "full":
        # Self-contained: nothing loaded from elsewhere (the SVG xmlns is a name, not a fetch).
        text = open(html_path, encoding="utf-8").read()
        for pattern in [r'\bsrc\s*=', r'href\s*=\s*"(https?:)?//', r'@import', r'url\(', r'<link\b', r'<img\b']:
            if re.search(pattern, text):
                fail("report.html references an outside resource (%s)" % pattern)
        for k in KEYS:
            if key[k] is None:
                fail("full run: %s is null" % k)
        for v in ["dense", "sparse"]:
            q = json.load(open(os.path.join(out, "int8", v + ".json")))
            near(key[v + "_int8_accuracy"], q["eval"]["int8_top1"], v + " int8")
            near(key[v + "_accuracy"], q["eval"]["fp32_top1"], v + " fp32")
            head = open(os.path.join(out, "aie", "paper-4x4", v, "layers.tsv")).readline()
            near(key["aie_%s_ms" % v], float(re.search(r"estimate ([0-9.]+) ms", head).group(1)), v + " aie")
        near(key["aie_speedup"], key["aie_dense_ms"] / key["aie_sparse_ms"], "aie speed-up")
        sim = json.load(open(os.path.join(out, "sim", "report.json")))
        near(key["sim_cycles"], sim["sim_cycles"], "sim cycles")
        near(key["estimate_cycles"], sim["estimate_cycles"], "estimate cycles")
        if key["sim_bit_exact"] is not True or sim["bit_exact"] is not True:
            fail("simulator not bit-exact: summary %r, report.json %r" % (key["sim_bit_exact"], sim["bit_exact"]))
        # The text report carries the same totals (rounded to whole cycles).
        total = re.search(r"^total: (\d+) cycles.*estimate (\d+) cycles",
                          open(os.path.join(out, "sim", "report.txt")).read(), re.M)
        if abs(float(total.group(1)) - key["sim_cycles"]) > 1:
            fail("report.txt total %s vs %r" % (total.group(1), key["sim_cycles"]))
        cpu = {r["name"]: r["median_ms"] for r in json.load(open(os.path.join(out, "bench", "cpu.json")))["runs"]}
        near(key["cpu_speedup_fp32"], cpu["dense fp32"] / cpu["sparse fp32"], "cpu fp32")
        near(key["cpu_speedup_int8"], cpu["dense int8"] / cpu["sparse int8"], "cpu int8")
        if len(s["sweep"]) != 6:  # 2x2..4x4, dense and sparse
            fail("sweep rows: %d" % len(s["sweep"]))
        return
    if mode == "dom":
        png = open(sys.argv[4], "rb").read()
        if len(png) < 10000 or png[:8] != b"\x89PNG\r\n\x1a\n":
            fail("screenshot is not a PNG or nearly empty (%d bytes)" % len(png))
        w, h = struct.unpack(">II", png[16:24])
        if (w, h) != (1280, 4000):
            fail("screenshot is %dx%d" % (w, h))
        if p.svgs < 8:
            fail("only %d SVG charts in the DOM" % p.svgs)
        if p.timeline_rects < 10:
            fail("timeline has %d rects" % p.timeline_rects)
        return
    fail("unknown mode " + mode)


if __name__ == "__main__":
    main()
