// NumPy .npy reader/writer (format 1.0/2.0/3.0, little-endian, C order).
//
// Enough of the format for the cross-check and the benchmarks: the dtypes
// ONNX Runtime and wbs exchange (f32, f64, i64, i32, u8, i8, bool). A
// Fortran-order or big-endian file is an error, never silently misread.
'use strict';

const fs = require('fs');
const path = require('path');

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);  // "\x93NUMPY"
// numpy pads the header so the data starts on a 64-byte boundary.
const HEADER_ALIGN = 64;

// descr -> {ort: ONNX Runtime tensor type, array: typed-array constructor}.
const DTYPES = {
  '<f4': { ort: 'float32', array: Float32Array },
  '<f8': { ort: 'float64', array: Float64Array },
  '<i8': { ort: 'int64', array: BigInt64Array },
  '<i4': { ort: 'int32', array: Int32Array },
  '|u1': { ort: 'uint8', array: Uint8Array },
  '|i1': { ort: 'int8', array: Int8Array },
  '|b1': { ort: 'bool', array: Uint8Array },
};
const ORT_TO_DESCR = Object.fromEntries(Object.entries(DTYPES).map(([d, v]) => [v.ort, d]));

// Parses the header dict, e.g. "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }".
function parseHeader(text, file) {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descr || !fortran || !shape) throw new Error(`${file}: malformed .npy header: ${text.trim()}`);
  if (fortran[1] === 'True') throw new Error(`${file}: Fortran-order .npy is not supported`);
  let d = descr[1];
  if (d === '=f4' || d === 'f4') d = '<f4';  // native = little-endian on x86
  if (d === '<u1' || d === '=u1') d = '|u1';
  if (!DTYPES[d]) throw new Error(`${file}: unsupported .npy dtype '${descr[1]}'`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  if (dims.some((x) => !Number.isInteger(x) || x < 0)) throw new Error(`${file}: bad shape (${shape[1]})`);
  return { descr: d, dims };
}

// Returns {descr, type (ORT type name), dims, data (typed array)}.
function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  let headerLen;
  let offset;
  if (major === 1) {
    headerLen = buf.readUInt16LE(8);
    offset = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) throw new Error(`${file}: truncated .npy header`);
    headerLen = buf.readUInt32LE(8);
    offset = 12;
  } else {
    throw new Error(`${file}: unsupported .npy version ${major}`);
  }
  if (offset + headerLen > buf.length) throw new Error(`${file}: truncated .npy header`);
  const header = buf.subarray(offset, offset + headerLen).toString('latin1');
  const { descr, dims } = parseHeader(header, file);
  const info = DTYPES[descr];
  const count = dims.reduce((a, b) => a * b, 1);
  const dataStart = offset + headerLen;
  const nbytes = count * info.array.BYTES_PER_ELEMENT;
  if (buf.length - dataStart < nbytes) {
    throw new Error(`${file}: truncated data (${buf.length - dataStart} bytes, need ${nbytes})`);
  }
  // Copy into a fresh, aligned ArrayBuffer (the file buffer may be unaligned).
  const ab = new ArrayBuffer(nbytes);
  new Uint8Array(ab).set(buf.subarray(dataStart, dataStart + nbytes));
  return { descr, type: info.ort, dims, data: new info.array(ab) };
}

// Writes `data` (a typed array) with `dims` as ORT type `type`; atomic (temp, rename).
function writeNpy(file, type, dims, data) {
  const descr = ORT_TO_DESCR[type];
  if (!descr) throw new Error(`${file}: cannot write dtype '${type}' as .npy`);
  const shapeStr = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  const total = MAGIC.length + 4 + header.length + 1;
  header += ' '.repeat((HEADER_ALIGN - (total % HEADER_ALIGN)) % HEADER_ALIGN) + '\n';
  const pre = Buffer.alloc(10);
  MAGIC.copy(pre, 0);
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  let bytes;
  if (type === 'bool') {
    bytes = Buffer.from(Uint8Array.from(data, (x) => (x ? 1 : 0)));
  } else {
    bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  }
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp${process.pid}`);
  fs.writeFileSync(tmp, Buffer.concat([pre, Buffer.from(header, 'latin1'), bytes]));
  fs.renameSync(tmp, file);
}

// A file-name-safe version of a tensor name ("resnetv1/fc:0" -> "resnetv1_fc_0").
function safeName(name) {
  return name.replace(/[^A-Za-z0-9_.-]/g, '_');
}

module.exports = { readNpy, writeNpy, safeName, DTYPES };
