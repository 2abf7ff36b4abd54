#!/usr/bin/env node
// Turns scripts/bench.sh's raw results into docs/BENCHMARKS.md (on stdout).
//
//   node tools/ort/bench_report.js BUILD_DIR/bench_results [--notes OLD.md]
//
// Reads: machine.txt, commands.txt, models/wbs_<m>_t<n>.json (Google
// Benchmark JSON), models/ort_<m>_t<n>.json (run.js), conv.json (Google
// Benchmark), profile/{dnnl_verbose.log, ortprof_*.json, ort_run.json}.
// Every number in the report comes from those files. The hand-written block
// between "<!-- notes -->" and "<!-- /notes -->" in --notes (the previous
// report) is carried over, so analysis survives a re-run.
'use strict';

const fs = require('fs');
const path = require('path');

const RESNET50_TARGET = 1.3;  // issue target: wbs dense (oneDNN) <= 1.3x ORT latency

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    return null;
  }
}

// "model/resnet50/threads:1/iterations:1/real_time" -> "model/resnet50/threads:1".
const benchName = (b) => (b.run_name || b.name).replace(/\/real_time$/, '').replace(/\/iterations:\d+$/, '');

const fmt = (x, d = 2) => (x === undefined || x === null || Number.isNaN(x) ? 'n/a' : Number(x).toFixed(d));

// Google Benchmark JSON -> Map(run_name -> {median (in ms), unit, label, counters, error}).
function gbMedians(file) {
  const out = new Map();
  const j = readJson(file);
  if (!j || !j.benchmarks) return out;
  const toMs = { ns: 1e-6, us: 1e-3, ms: 1, s: 1e3 };
  for (const b of j.benchmarks) {
    const name = benchName(b);
    if (b.error_occurred) {
      out.set(name, { error: b.error_message || 'error' });
      continue;
    }
    // Aggregates when repetitions > 1, else the single run.
    if (b.run_type === 'aggregate' && b.aggregate_name !== 'median') continue;
    if (b.run_type === 'aggregate' || !out.has(name)) {
      out.set(name, {
        ms: b.real_time * (toMs[b.time_unit] || 1),
        label: b.label || '',
        gflops: b['GFLOP/s'],
        count: b.count,
        reps: b.repetitions,
      });
    }
  }
  return out;
}

function parseKv(file) {
  const kv = {};
  if (!fs.existsSync(file)) return kv;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) kv[line.slice(0, i)] = line.slice(i + 1);
  }
  return kv;
}

function median(xs) {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// Every repetition of benchmark `name` in the Google Benchmark JSON `files`
// (one per round) -> {samples (ms), label, error}.
function gbSamples(files, name) {
  const toMs = { ns: 1e-6, us: 1e-3, ms: 1, s: 1e3 };
  const res = { samples: [], label: '', error: null };
  for (const f of files) {
    const j = readJson(f);
    if (!j || !j.benchmarks) continue;
    for (const b of j.benchmarks) {
      if (benchName(b) !== name) continue;
      if (b.error_occurred) {
        res.error = b.error_message || 'error';
        continue;
      }
      if (b.run_type === 'aggregate') continue;
      res.samples.push(b.real_time * (toMs[b.time_unit] || 1));
      res.label = b.label || res.label;
      if (b.MFLOP !== undefined) res.mflop = b.MFLOP;
      if (b.count !== undefined) res.count = b.count;
    }
  }
  return res;
}

// Files "<prefix>_r<k>.json" in dir, all rounds.
function rounds(dir, prefix) {
  if (!fs.existsSync(dir)) return [];
  const re = new RegExp(`^${prefix}_r\\d+\\.json$`);
  return fs.readdirSync(dir).filter((f) => re.test(f)).map((f) => path.join(dir, f));
}

// Median latencies (ms) of model m at t threads: {wbs, ort, active, label, error, n}.
function modelResult(R, m, t) {
  const dir = path.join(R, 'models');
  const name = `model/${m}/threads:${t}`;
  const w = gbSamples(rounds(dir, `wbs_${m}_t${t}`), name);
  const p = gbSamples(rounds(dir, `wbs_${m}_t${t}_active`), name);
  let ortSamples = [];
  for (const f of rounds(dir, `ort_${m}_t${t}`)) {
    const o = readJson(f);
    if (o && o.latency_ms) ortSamples = ortSamples.concat(o.latency_ms.samples);
  }
  return {
    wbs: median(w.samples), nWbs: w.samples.length, label: w.label, error: w.error,
    active: median(p.samples), ort: median(ortSamples), nOrt: ortSamples.length,
  };
}

function modelsSection(R, lines, policy) {
  const dir = path.join(R, 'models');
  const files = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  const keys = [];
  const seen = new Set();
  for (const f of files) {
    const m = /^ort_(.+)_t(\d+)_r\d+\.json$/.exec(f);
    if (m && !seen.has(`${m[1]}/${m[2]}`)) {
      seen.add(`${m[1]}/${m[2]}`);
      keys.push({ model: m[1], threads: Number(m[2]) });
    }
  }
  const order = ['resnet18', 'resnet50', 'vgg16', 'inception_v3', 'mobilenet_v2', 'fmnist_resnet'];
  const rank = (m) => (order.indexOf(m) < 0 ? 99 : order.indexOf(m));
  keys.sort((a, b) => rank(a.model) - rank(b.model) || a.model.localeCompare(b.model) || a.threads - b.threads);
  lines.push(`| model | threads | wbs ms (OMP_WAIT_POLICY=${policy}) | ORT ms | wbs / ORT | wbs ms, OMP_WAIT_POLICY=active (/ ORT) | samples wbs / ORT | wbs nodes on a fast path |`);
  lines.push('|---|---:|---:|---:|---:|---:|---:|---|');
  const results = {};
  for (const { model, threads } of keys) {
    const r = modelResult(R, model, threads);
    results[`${model}/${threads}`] = r;
    r.ratio = r.wbs !== undefined && r.ort ? r.wbs / r.ort : undefined;
    const note = r.error ? `error: ${r.error}` : r.label || 'no result';
    const active = r.active !== undefined ? `${fmt(r.active)} (${fmt(r.ort ? r.active / r.ort : undefined)}x)` : '—';
    lines.push(`| ${model} | ${threads} | ${fmt(r.wbs)} | ${fmt(r.ort)} | ${fmt(r.ratio)} | ${active} | ` +
      `${r.nWbs} / ${r.nOrt} | ${note} |`);
  }
  return results;
}

function convSection(R, lines, modelMs) {
  const dir = path.join(R, 'conv');
  const listFile = path.join(dir, 'files.txt');
  if (!fs.existsSync(listFile)) {
    lines.push('_No conv results (wbs_bench_conv failed or was not run)._');
    return;
  }
  const shapes = fs.readFileSync(listFile, 'utf8').split('\n').filter((l) => l.trim())
    .map((f) => path.basename(f, '.onnx').replace(/^conv_/, ''));
  const threadSet = new Set();
  for (const f of fs.readdirSync(dir)) {
    const m = /^wbs_.+_t(\d+)\.json$/.exec(f);
    if (m) threadSet.add(Number(m[1]));
  }
  const threads = [...threadSet].sort((a, b) => a - b);
  const head = ['layer', 'cin, cout, k, stride, pad, HxW', 'count'];
  for (const t of threads) head.push(`wbs µs (${t}T)`, `GFLOP/s (${t}T)`, `ORT µs (${t}T)`, `wbs / ORT (${t}T)`);
  head.push('wbs implementation');
  lines.push(`| ${head.join(' | ')} |`);
  lines.push(`|${head.map((h, i) => (i < 2 || i === head.length - 1 ? '---' : '---:')).join('|')}|`);
  const totals = Object.fromEntries(threads.map((t) => [t, { wbs: 0, ort: 0 }]));
  for (const shape of shapes) {
    const m = /^cin(\d+)_cout(\d+)_k(\d+)_s(\d+)_p(\d+)_(\d+x\d+)$/.exec(shape);
    const pretty = m ? `${m[1]}, ${m[2]}, ${m[3]}, ${m[4]}, ${m[5]}, ${m[6]}` : shape;
    let label = '';
    let count = 1;
    const cells = [];
    for (const t of threads) {
      const w = gbSamples([path.join(dir, `wbs_${shape}_t${t}.json`)], `conv/${shape}/threads:${t}`);
      const o = readJson(path.join(dir, `ort_${shape}_t${t}.json`));
      const wms = median(w.samples);
      const oms = o && o.latency_ms ? o.latency_ms.median : undefined;
      if (w.label) label = w.label;
      if (w.count !== undefined) count = w.count;
      const gf = wms && w.mflop ? w.mflop / wms : undefined;  // MFLOP / ms = GFLOP/s
      cells.push(fmt(wms !== undefined ? wms * 1e3 : undefined, 0), fmt(gf, 1),
        fmt(oms !== undefined ? oms * 1e3 : undefined, 0), fmt(wms && oms ? wms / oms : undefined));
      if (wms !== undefined && oms !== undefined) {
        totals[t].wbs += count * wms;
        totals[t].ort += count * oms;
      }
    }
    const sp = label.indexOf(' ');
    const layer = sp > 0 ? label.slice(0, sp) : label;
    const impl = sp > 0 ? label.slice(sp + 1) : '';
    lines.push(`| ${[layer, pretty, count, ...cells, impl].join(' | ')} |`);
  }
  lines.push('');
  for (const t of threads) {
    const whole = modelMs[t];
    lines.push(`- ${t} thread(s): the 53 convolutions timed alone (count x median) sum to **${fmt(totals[t].wbs)} ms** ` +
      `in wbs and **${fmt(totals[t].ort)} ms** in ORT (ratio ${fmt(totals[t].ort ? totals[t].wbs / totals[t].ort : undefined)})` +
      (whole ? `; whole ResNet-50 in wbs: ${fmt(whole)} ms.` : '.'));
  }
}

// oneDNN verbose "exec" lines: kind, impl, time (ms, last field).
function dnnlProfile(file, runs) {
  if (!fs.existsSync(file)) return null;
  const groups = new Map();
  let total = 0;
  let lines = 0;
  // Only the timed runs: what follows bench_models' last marker line.
  const all = fs.readFileSync(file, 'utf8').split('\n');
  const start = all.map((l) => l.startsWith('wbs_bench: timed runs start')).lastIndexOf(true);
  if (start < 0) return null;
  let runMs;  // Google Benchmark's own time for the verbose runs (console line)
  for (const line of all.slice(start + 1)) {
    const gb = /^model\/\S+\/real_time\s+([\d.]+) ms/.exec(line);
    if (gb) runMs = Number(gb[1]);
    if (!/^(dnnl|onednn)_verbose,exec,/.test(line)) continue;
    const f = line.split(',');
    const kind = f[3];
    const impl = f[4];
    const ms = Number(f[f.length - 1]);
    if (!Number.isFinite(ms)) continue;
    let key = `${kind} (${impl})`;
    if (kind === 'reorder') {
      // src/dst layouts tell plain->blocked (activations in) from blocked->plain (out).
      const mds = f[6] || '';
      const src = /src_\w+::\w+:(\w+):/.exec(mds);
      const dst = /dst_\w+::\w+:(\w+):/.exec(mds);
      if (src && dst) key = `reorder ${src[1]} -> ${dst[1]} (${impl})`;
    }
    const g = groups.get(key) || { ms: 0, n: 0 };
    g.ms += ms;
    g.n += 1;
    groups.set(key, g);
    total += ms;
    lines += 1;
  }
  if (lines === 0) return null;
  return { groups, total: total / runs, runs, runMs };
}

// ORT profiler trace: per op type kernel time.
function ortProfile(dir) {
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /^ortprof.*\.json$/.test(f)) : [];
  if (files.length === 0) return null;
  const ev = readJson(path.join(dir, files[0]));
  if (!Array.isArray(ev)) return null;
  const runs = ev.filter((e) => e.cat === 'Session' && e.name === 'model_run').length;
  if (runs === 0) return null;
  const groups = new Map();
  let total = 0;
  let modelRun = 0;
  for (const e of ev) {
    if (e.cat === 'Session' && e.name === 'model_run') modelRun += e.dur / 1e3;
    if (e.cat !== 'Node' || !/_kernel_time$/.test(e.name)) continue;
    const op = (e.args && e.args.op_name) || '?';
    const g = groups.get(op) || { ms: 0, n: 0 };
    g.ms += e.dur / 1e3;
    g.n += 1;
    groups.set(op, g);
    total += e.dur / 1e3;
  }
  return { groups, runs, total: total / runs, modelRun: modelRun / runs };
}

// bench_models --profile_nodes output: "node\top\timpl\tname\tms" lines, "model\tms".
function nodeProfile(file) {
  if (!fs.existsSync(file)) return null;
  const groups = new Map();
  let total = 0;
  let model;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const f = line.split('\t');
    if (f[0] === 'model') model = Number(f[1]);
    if (f[0] !== 'node' || f.length < 5) continue;
    const key = `${f[1]} : ${f[2]}`;
    const ms = Number(f[4]);
    const g = groups.get(key) || { ms: 0, n: 0, max: -1, slowest: '' };
    g.ms += ms;
    g.n += 1;
    if (ms > g.max) {
      g.max = ms;
      g.slowest = f[3];
    }
    groups.set(key, g);
    total += ms;
  }
  return groups.size ? { groups, total, model } : null;
}

function profileSection(R, lines, wbsMs, ortMs, runs) {
  const dn = dnnlProfile(path.join(R, 'profile', 'dnnl_verbose.log'), runs);
  const op = ortProfile(path.join(R, 'profile'));
  if (!dn && !op) {
    lines.push('_No profile (ResNet-50 was not benchmarked, or the profilers produced nothing)._');
    return;
  }
  if (dn) {
    lines.push(`**wbs** (oneDNN verbose log of ${runs} runs, which took ${fmt(dn.runMs)} ms per run; ` +
      `${fmt(wbsMs)} ms without the log in the table above):`);
    lines.push('');
    lines.push('| oneDNN primitive (implementation) | calls / run | ms / run | % of run |');
    lines.push('|---|---:|---:|---:|');
    const rows = [...dn.groups.entries()].sort((a, b) => b[1].ms - a[1].ms);
    for (const [k, g] of rows) {
      lines.push(`| ${k} | ${fmt(g.n / runs, 0)} | ${fmt(g.ms / runs)} | ${dn.runMs ? fmt((100 * g.ms) / runs / dn.runMs, 1) : 'n/a'} |`);
    }
    if (dn.runMs) {
      const rest = dn.runMs - dn.total;
      lines.push(`| everything outside oneDNN (wbs operators, runtime, logging) | | ${fmt(rest)} | ${fmt((100 * rest) / dn.runMs, 1)} |`);
    }
    lines.push('');
  }
  const nodes = nodeProfile(path.join(R, 'profile', 'nodes.txt'));
  if (nodes) {
    lines.push(`**wbs per node** (\`wbs_bench_models --profile_nodes\`: every node of the prepared graph alone in a ` +
      `one-node session, median of 9 runs; alone, a node reads and writes plain tensors, so its time includes ` +
      `layout conversions the whole model avoids; the isolated times sum to ${fmt(nodes.total)} ms, the whole model ` +
      `ran in ${fmt(nodes.model)} ms in the same process):`);
    lines.push('');
    lines.push('| op : implementation | nodes | ms (sum) | % of sum | slowest node (ms) |');
    lines.push('|---|---:|---:|---:|---|');
    for (const [k, g] of [...nodes.groups.entries()].sort((a, b) => b[1].ms - a[1].ms)) {
      lines.push(`| ${k} | ${g.n} | ${fmt(g.ms)} | ${fmt((100 * g.ms) / nodes.total, 1)} | ${g.slowest} (${fmt(g.max)}) |`);
    }
    lines.push('');
  }
  if (op) {
    lines.push(`**ONNX Runtime** (its profiler, ${op.runs} runs, 'all' optimizations; model_run ${fmt(op.modelRun)} ms/run ` +
      `with profiling on, ${fmt(ortMs)} ms without):`);
    lines.push('');
    lines.push('| ORT op type | calls / run | ms / run | % of kernel time |');
    lines.push('|---|---:|---:|---:|');
    const rows = [...op.groups.entries()].sort((a, b) => b[1].ms - a[1].ms);
    for (const [k, g] of rows) {
      lines.push(`| ${k} | ${fmt(g.n / op.runs, 0)} | ${fmt(g.ms / op.runs)} | ${fmt((100 * g.ms) / op.runs / op.total, 1)} |`);
    }
    lines.push('');
  }
}

function main() {
  const argv = process.argv.slice(2);
  let notesFile = null;
  const pos = [];
  for (let i = 0; i < argv.length; ++i) {
    if (argv[i] === '--notes') notesFile = argv[++i];
    else pos.push(argv[i]);
  }
  if (pos.length !== 1) {
    process.stderr.write('usage: node tools/ort/bench_report.js RESULTS_DIR [--notes OLD.md]\n');
    process.exit(2);
  }
  const R = pos[0];
  const m = parseKv(path.join(R, 'machine.txt'));
  const L = [];
  L.push('# Benchmarks');
  L.push('');
  L.push(`Generated by \`make bench\` (\`scripts/bench.sh\`) on ${m.date || 'n/a'} at commit ${m.commit || 'n/a'}; ` +
    'the tables are rewritten on every run, the notes block is kept. Timing is wall-clock; ' +
    'the machine is shared, so ratios measured side by side mean more than absolute numbers.');
  L.push('');
  L.push('## Machine');
  L.push('');
  L.push('| | |');
  L.push('|---|---|');
  L.push(`| CPU | ${m.cpu || 'n/a'} (${m.cpus || '?'} logical CPUs, ${m.threads_per_core || '?'} thread(s) per core` +
    `${m.hypervisor ? `, ${m.hypervisor} VM` : ''}) |`);
  L.push(`| ISA flags | ${m.isa || 'n/a'} |`);
  L.push(`| Memory | ${m.mem || 'n/a'} |`);
  L.push(`| Load average at the end | ${m.load || 'n/a'} |`);
  L.push(`| Compiler | ${m.compiler || 'n/a'} |`);
  L.push(`| oneDNN / Google Benchmark | ${m.onednn || 'n/a'} / ${m.benchmark || 'n/a'} |`);
  L.push(`| ONNX Runtime | onnxruntime-node ${m.ort || 'n/a'} (CPU EP), node ${m.node || 'n/a'} |`);
  L.push('');

  L.push('## Whole models, batch 1');
  L.push('');
  L.push('wbs: `wbs_bench_models` (fast backend = oneDNN; weights packed at session creation, 2 untimed warm-up ' +
    'runs). ORT: `tools/ort/run.js` on the ONNX file `wbs zoo` wrote for the same model (graph optimization ' +
    'level `all`, intra-op threads = threads, inter-op 1, sequential; 3 warm-up runs). Same random input. ' +
    `A sample is one run on either side; wbs and ORT alternated for ${m.rounds || '?'} rounds of ${m.reps || '?'} ` +
    'runs per row, and each number is the median of all samples. wbs runs with its default ' +
    `OMP_WAIT_POLICY=${m.omp_wait_policy || '?'} (OpenMP threads sleep between parallel regions; the CLI ` +
    'sets it, `make` exports it); at 2 threads it also ran with libgomp\'s spinning `active` policy, for the record.');
  L.push('');
  const results = modelsSection(R, L, m.omp_wait_policy || 'default');
  L.push('');
  const r1 = (results['resnet50/1'] || {}).ratio;
  const r2 = (results['resnet50/2'] || {}).ratio;
  const verdict = (r) => (r === undefined ? 'not measured' : r <= RESNET50_TARGET ? 'met' : 'NOT met');
  L.push(`**Target (ResNet-50, wbs dense within ${RESNET50_TARGET}x of ORT):** 1 thread ${fmt(r1)}x — ${verdict(r1)}; ` +
    `2 threads ${fmt(r2)}x — ${verdict(r2)}.`);
  L.push('');

  const wbsR50 = {};
  for (const t of [1, 2]) if (results[`resnet50/${t}`]) wbsR50[t] = results[`resnet50/${t}`].wbs;
  L.push('## ResNet-50 conv layers (`wbs_bench_conv`)');
  L.push('');
  L.push('Each distinct conv shape of ResNet-50 (`bench/data/resnet50_convs.csv`, checked against the zoo model at ' +
    'start-up) as a one-node graph with bias, no activation, batch 1: wbs fast backend (`wbs_bench_conv`) and ' +
    'ORT on the same graph exported as ONNX (`wbs_bench_conv --export_onnx`), alternating per layer; medians of ' +
    `${m.reps || '?'} single runs each. Both include their activation layout conversions at the layer boundary ` +
    '(wbs: plain <-> blocked/nhwc reorders; ORT: its NCHWc reorder nodes). GFLOP/s counts 2 FLOPs per multiply-add.');
  L.push('');
  convSection(R, L, wbsR50);
  L.push('');

  L.push('## Where ResNet-50\'s time goes (1 thread)');
  L.push('');
  profileSection(R, L, wbsR50[1], (results['resnet50/1'] || {}).ort, Number(m.profile_runs) || 20);

  L.push('## Notes');
  L.push('');
  let notes = '<!-- notes -->\n_(hand-written analysis goes here; kept across runs)_\n<!-- /notes -->';
  if (notesFile && fs.existsSync(notesFile)) {
    const old = fs.readFileSync(notesFile, 'utf8');
    const mm = /<!-- notes -->[\s\S]*?<!-- \/notes -->/.exec(old);
    if (mm) notes = mm[0];
  }
  L.push(notes);
  L.push('');

  L.push('## Commands');
  L.push('');
  L.push('`make bench` runs `bash scripts/bench.sh build/release`, which ran these commands (paths relative to the ' +
    'repository, BUILD = the build directory; <model>, <layer>, <t> and round <k> stand for every value used):');
  L.push('');
  L.push('```');
  const cmds = fs.existsSync(path.join(R, 'commands.txt')) ? fs.readFileSync(path.join(R, 'commands.txt'), 'utf8') : '';
  // One line per kind of command: rounds, layers, models and thread counts
  // become placeholders.
  const models = ['resnet18', 'resnet50', 'vgg16', 'inception_v3', 'mobilenet_v2', 'fmnist_resnet'];
  const seenCmd = new Set();
  for (const line of cmds.split('\n')) {
    if (!line.trim()) continue;
    let g = line.replace(/_r\d+\.json/g, '_r<k>.json')
      .replace(/cin\d+_cout\d+_k\d+_s\d+_p\d+_\d+x\d+/g, '<layer>')
    if (!/--profile|--mark_timed_runs|--profile_nodes/.test(g)) {
      g = g.replace(/(--threads[= ])\d+/g, '$1<t>').replace(/_t\d+/g, '_t<t>').replace(/threads:\d+/g, 'threads:<t>');
      for (const mm of models) g = g.split(mm).join('<model>');
    }
    if (!seenCmd.has(g)) {
      seenCmd.add(g);
      L.push(g);
    }
  }
  L.push('```');
  process.stdout.write(`${L.join('\n')}\n`);
}

main();
