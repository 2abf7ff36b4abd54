#!/usr/bin/env node
// Compares two sets of .npy outputs: a reference (ONNX Runtime) and a test
// (wbs, or ORT on a model wbs exported).
//
//   node tools/ort/compare.js REF TEST [--tol 1e-4]
//
// REF and TEST are either two directories (every REF/*.npy must have a
// same-named TEST/*.npy) or two comma-separated file lists paired in order.
// Per output: max |ref - test|, range = max(ref) - min(ref), ratio =
// err / range. PASS iff shapes and dtypes match, nothing is NaN/Inf where
// the reference is finite, and ratio <= tol for every output. A constant
// reference (range 0) is compared against max(|ref|, 1) instead.
// Prints one JSON object {pass, worst: {...}, outputs: [...]}; exits 0 on
// pass, 1 on a mismatch, 2 on a usage or file error.
'use strict';

const fs = require('fs');
const path = require('path');
const { readNpy } = require('./npy');

function usage(msg) {
  if (msg) process.stderr.write(`compare.js: ${msg}\n`);
  process.stderr.write('usage: node tools/ort/compare.js REF TEST [--tol 1e-4]  (dirs or comma-separated .npy lists)\n');
  process.exit(2);
}

function pairs(ref, test) {
  const isDir = (p) => fs.existsSync(p) && fs.statSync(p).isDirectory();
  if (isDir(ref) !== isDir(test)) usage('REF and TEST must both be directories or both file lists');
  if (isDir(ref)) {
    const names = fs.readdirSync(ref).filter((f) => f.endsWith('.npy')).sort();
    if (names.length === 0) throw new Error(`${ref}: no .npy files`);
    return names.map((n) => ({ name: n.replace(/\.npy$/, ''), ref: path.join(ref, n), test: path.join(test, n) }));
  }
  const r = ref.split(',').filter((s) => s);
  const t = test.split(',').filter((s) => s);
  if (r.length !== t.length) usage(`${r.length} reference files but ${t.length} test files`);
  return r.map((f, i) => ({ name: path.basename(f, '.npy'), ref: f, test: t[i] }));
}

function compareOne(p, tol) {
  const res = { name: p.name, ref: p.ref, test: p.test, pass: false };
  if (!fs.existsSync(p.test)) {
    res.error = `missing ${p.test}`;
    return res;
  }
  const a = readNpy(p.ref);
  const b = readNpy(p.test);
  res.shape = a.dims;
  if (a.type !== b.type || a.dims.join(',') !== b.dims.join(',')) {
    res.error = `ref ${a.type}[${a.dims}] vs test ${b.type}[${b.dims}]`;
    return res;
  }
  let lo = Infinity;
  let hi = -Infinity;
  let absMax = 0;
  let err = 0;
  let errIndex = -1;
  let bad = 0;  // non-finite in test where ref is finite, or NaN mismatch
  for (let i = 0; i < a.data.length; ++i) {
    const x = Number(a.data[i]);
    const y = Number(b.data[i]);
    if (Number.isFinite(x)) {
      if (x < lo) lo = x;
      if (x > hi) hi = x;
      if (Math.abs(x) > absMax) absMax = Math.abs(x);
      if (!Number.isFinite(y)) { ++bad; continue; }
      const d = Math.abs(x - y);
      if (d > err) { err = d; errIndex = i; }
    } else if (!Object.is(x, y) && !(Number.isNaN(x) && Number.isNaN(y))) {
      ++bad;
    }
  }
  const range = hi >= lo ? hi - lo : 0;
  const denom = range > 0 ? range : Math.max(absMax, 1);
  Object.assign(res, { max_abs_err: err, err_index: errIndex, range, ratio: err / denom, non_finite: bad });
  res.pass = bad === 0 && res.ratio <= tol;
  return res;
}

function main() {
  const argv = process.argv.slice(2);
  let tol = 1e-4;
  const pos = [];
  for (let i = 0; i < argv.length; ++i) {
    if (argv[i] === '--tol') tol = Number(argv[++i]);
    else if (argv[i].startsWith('-')) usage(`unknown option ${argv[i]}`);
    else pos.push(argv[i]);
  }
  if (pos.length !== 2 || !(tol >= 0)) usage();
  const outputs = pairs(pos[0], pos[1]).map((p) => compareOne(p, tol));
  // Worst = a failed output if any, else the largest ratio.
  const key = (o) => (o.pass ? o.ratio : Infinity);
  const worst = outputs.reduce((w, o) => (key(o) > key(w) ? o : w), outputs[0]);
  const pass = outputs.every((o) => o.pass);
  process.stdout.write(`${JSON.stringify({ pass, tol, worst, outputs })}\n`);
  process.exit(pass ? 0 : 1);
}

try {
  main();
} catch (e) {
  process.stderr.write(`compare.js: error: ${e && e.message ? e.message : e}\n`);
  process.exit(2);
}
