#!/usr/bin/env node
// Runs an ONNX model with ONNX Runtime (CPU) on .npy inputs: the reference
// side of the tier-3 cross-check and the baseline of the benchmarks.
//
//   node tools/ort/run.js model.onnx --inputs in0.npy[,in1.npy...] [--outdir DIR]
//        [--threads N] [--repeat N] [--warmup N] [--opt all|extended|basic|disabled]
//        [--profile PREFIX] [--save-optimized FILE]
//
// Inputs bind to the model's inputs in order (or by name with name=file.npy).
// Each output is written to DIR/<output name, made file-safe>.npy. Prints one
// JSON object on stdout: inputs, outputs (name, type, shape, file) and the
// latency of the timed runs in ms (median, min, mean, all samples). Session
// options mirror a plain ORT deployment: graph optimization level 'all',
// intra-op threads = --threads, inter-op threads 1, sequential execution.
'use strict';

const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');
const { readNpy, writeNpy, safeName } = require('./npy');

function usage(msg) {
  if (msg) process.stderr.write(`run.js: ${msg}\n`);
  process.stderr.write(
    'usage: node tools/ort/run.js model.onnx --inputs a.npy[,name=b.npy...] [--outdir DIR] ' +
      '[--threads N] [--repeat N] [--warmup N] [--opt LEVEL] [--profile PREFIX] [--save-optimized FILE]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const a = { model: null, inputs: [], outdir: null, threads: 1, repeat: 1, warmup: 0, opt: 'all',
    profile: null, saveOptimized: null };
  const intArg = (name, v, min) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) usage(`${name} must be an integer >= ${min}, got '${v}'`);
    return n;
  };
  for (let i = 0; i < argv.length; ++i) {
    const k = argv[i];
    const next = () => (i + 1 < argv.length ? argv[++i] : usage(`${k} needs a value`));
    if (k === '--inputs') a.inputs = next().split(',').filter((s) => s.length > 0);
    else if (k === '--outdir') a.outdir = next();
    else if (k === '--threads') a.threads = intArg(k, next(), 1);
    else if (k === '--repeat') a.repeat = intArg(k, next(), 1);
    else if (k === '--warmup') a.warmup = intArg(k, next(), 0);
    else if (k === '--opt') a.opt = next();
    else if (k === '--profile') a.profile = next();
    else if (k === '--save-optimized') a.saveOptimized = next();
    else if (k === '-h' || k === '--help') usage();
    else if (k.startsWith('-')) usage(`unknown option ${k}`);
    else if (a.model === null) a.model = k;
    else usage(`unexpected argument ${k}`);
  }
  if (!a.model) usage('missing model path');
  if (!['all', 'extended', 'basic', 'disabled', 'layout'].includes(a.opt)) usage(`bad --opt '${a.opt}'`);
  return a;
}

function median(xs) {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const options = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: args.opt,
    intraOpNumThreads: args.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    logSeverityLevel: 3,
  };
  if (args.profile) {
    options.enableProfiling = true;
    options.profileFilePrefix = args.profile;
  }
  if (args.saveOptimized) options.optimizedModelFilePath = args.saveOptimized;

  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(args.model, options);
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;

  const names = session.inputNames;
  const feeds = {};
  const inputInfo = [];
  args.inputs.forEach((spec, i) => {
    let name;
    let file = spec;
    const eq = spec.indexOf('=');
    if (eq > 0 && !fs.existsSync(spec)) {
      name = spec.slice(0, eq);
      file = spec.slice(eq + 1);
      if (!names.includes(name)) throw new Error(`model has no input '${name}' (inputs: ${names.join(', ')})`);
    } else {
      if (i >= names.length) throw new Error(`${args.inputs.length} inputs given, model has ${names.length}`);
      name = names[i];
    }
    const t = readNpy(file);
    feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
    inputInfo.push({ name, type: t.type, shape: t.dims, file });
  });
  const missing = names.filter((n) => !(n in feeds));
  if (missing.length) throw new Error(`no .npy given for input(s): ${missing.join(', ')}`);

  for (let i = 0; i < args.warmup; ++i) await session.run(feeds);
  const samples = [];
  let results = null;
  for (let i = 0; i < args.repeat; ++i) {
    const s = process.hrtime.bigint();
    results = await session.run(feeds);
    samples.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  if (args.profile) session.endProfiling();

  if (args.outdir) fs.mkdirSync(args.outdir, { recursive: true });
  const outputs = session.outputNames.map((name) => {
    const t = results[name];
    const info = { name, type: t.type, shape: t.dims.map(Number) };
    if (args.outdir) {
      info.file = path.join(args.outdir, `${safeName(name)}.npy`);
      writeNpy(info.file, t.type, info.shape, t.data);
    }
    return info;
  });
  await session.release();

  const report = {
    runtime: `onnxruntime-node ${ort.env.versions.node}`,
    model: args.model,
    threads: args.threads,
    optimization: args.opt,
    load_ms: loadMs,
    inputs: inputInfo,
    outputs,
    latency_ms: {
      median: median(samples),
      min: Math.min(...samples),
      mean: samples.reduce((x, y) => x + y, 0) / samples.length,
      warmup: args.warmup,
      repeat: args.repeat,
      samples,
    },
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().catch((e) => {
  process.stderr.write(`run.js: error: ${e && e.message ? e.message : e}\n`);
  process.exit(1);
});
