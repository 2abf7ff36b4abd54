#!/usr/bin/env node
// Writes deterministic random model inputs as .npy (float32 standard normal,
// int64 in [0, 10)), reproducible from --seed on any machine.
//
//   node tools/ort/gen_input.js --model model.onnx --seed S --outdir DIR [--batch N]
//       one DIR/<input name>.npy per model input; symbolic dims become --batch
//       (leading) and are an error elsewhere
//   node tools/ort/gen_input.js --shape 1,3,224,224 --seed S -o FILE.npy [--dtype float32|int64]
//
// Prints what was written, comma-separated: with --model "name=path" per model
// input in order (the form run.js --inputs and `wbs run --input` take), with
// --shape the path.
'use strict';

const path = require('path');
const fs = require('fs');
const { writeNpy, safeName } = require('./npy');

function usage(msg) {
  if (msg) process.stderr.write(`gen_input.js: ${msg}\n`);
  process.stderr.write(
    'usage: node tools/ort/gen_input.js (--model M.onnx --outdir DIR [--batch N] | --shape D0,D1,.. -o F.npy ' +
      '[--dtype float32|int64]) --seed S\n');
  process.exit(2);
}

// mulberry32: a small, well-mixed 32-bit generator; enough for test inputs.
function makeRng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomData(type, count, rng) {
  if (type === 'float32') {
    const d = new Float32Array(count);
    for (let i = 0; i < count; i += 2) {  // Box-Muller, two normals per pair
      const u1 = 1 - rng();
      const u2 = rng();
      const r = Math.sqrt(-2 * Math.log(u1));
      d[i] = r * Math.cos(2 * Math.PI * u2);
      if (i + 1 < count) d[i + 1] = r * Math.sin(2 * Math.PI * u2);
    }
    return d;
  }
  if (type === 'int64') return BigInt64Array.from({ length: count }, () => BigInt(Math.floor(rng() * 10)));
  throw new Error(`cannot generate random '${type}' inputs`);
}

async function main() {
  const a = { model: null, shape: null, out: null, outdir: null, seed: null, batch: 1, dtype: 'float32' };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; ++i) {
    const k = argv[i];
    const next = () => (i + 1 < argv.length ? argv[++i] : usage(`${k} needs a value`));
    if (k === '--model') a.model = next();
    else if (k === '--shape') a.shape = next().split(',').map(Number);
    else if (k === '-o') a.out = next();
    else if (k === '--outdir') a.outdir = next();
    else if (k === '--seed') a.seed = Number(next());
    else if (k === '--batch') a.batch = Number(next());
    else if (k === '--dtype') a.dtype = next();
    else usage(`unknown argument ${k}`);
  }
  if (!Number.isInteger(a.seed) || a.seed < 0) usage('--seed must be a non-negative integer');
  const rng = makeRng(a.seed);

  if (a.shape) {
    if (!a.out) usage('--shape needs -o FILE');
    if (a.shape.some((d) => !Number.isInteger(d) || d < 0)) usage('bad --shape');
    const count = a.shape.reduce((x, y) => x * y, 1);
    writeNpy(a.out, a.dtype, a.shape, randomData(a.dtype, count, rng));
    process.stdout.write(`${a.out}\n`);
    return;
  }
  if (!a.model || !a.outdir) usage('need --model and --outdir (or --shape and -o)');
  const ort = require('onnxruntime-node');
  const session = await ort.InferenceSession.create(a.model, { graphOptimizationLevel: 'disabled' });
  fs.mkdirSync(a.outdir, { recursive: true });
  const pairs = session.inputMetadata.map((m) => {
    if (!m.isTensor) throw new Error(`input '${m.name}' is not a tensor`);
    const dims = m.shape.map((d, i) => {
      if (typeof d === 'number' && d >= 0) return d;
      if (i === 0) return a.batch;
      throw new Error(`input '${m.name}' has symbolic dim ${i} ('${d}'); use --shape`);
    });
    const file = path.join(a.outdir, `${safeName(m.name)}.npy`);
    const count = dims.reduce((x, y) => x * y, 1);
    writeNpy(file, m.type, dims, randomData(m.type, count, rng));
    return `${m.name}=${file}`;
  });
  await session.release();
  process.stdout.write(`${pairs.join(',')}\n`);
}

main().catch((e) => {
  process.stderr.write(`gen_input.js: error: ${e && e.message ? e.message : e}\n`);
  process.exit(1);
});
