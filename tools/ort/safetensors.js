// Reads a .safetensors file (F32 and I64 tensors) into {name: {shape, data}}: the consumer checks'
// inputs and xgrad's outputs.
'use strict';
const fs = require('fs');

function readSafetensors(file) {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const out = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [begin, end] = info.data_offsets;
    const bytes = Uint8Array.prototype.slice.call(buf, 8 + n + begin, 8 + n + end);  // a copy: aligned
    const Type = { F32: Float32Array, F64: Float64Array, I64: BigInt64Array }[info.dtype];
    if (!Type) throw new Error(`${file}: tensor ${name}: unsupported dtype ${info.dtype}`);
    out[name] = { shape: info.shape, data: new Type(bytes.buffer) };
  }
  return out;
}

module.exports = { readSafetensors };
