// The ONNX Runtime consumer check: every DIR/NAME.onnx (written by tests/onnx_export_models) runs on
// NAME.io.safetensors' input in ONNX Runtime's CPU backend, and its output must equal xgrad's within
// 1e-4 relative (max |ort - xgrad| / max |xgrad|). Usage: node tools/ort/check.js DIR
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');
const { readSafetensors } = require('./safetensors');

const TOLERANCE = 1e-4;
const EXPECTED_MODELS = 7;  // the zoo's five, the residual net and the every-op net

async function main() {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: node check.js DIR');
  const names = fs.readdirSync(dir).filter((f) => f.endsWith('.onnx')).map((f) => f.slice(0, -5)).sort();
  if (names.length < EXPECTED_MODELS) throw new Error(`${dir}: ${names.length} models, expected ${EXPECTED_MODELS}`);
  let failed = 0;
  for (const name of names) {
    const io = readSafetensors(path.join(dir, `${name}.io.safetensors`));
    const session = await ort.InferenceSession.create(path.join(dir, `${name}.onnx`));
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', io.input.data, io.input.shape) };
    const result = (await session.run(feeds))[session.outputNames[0]];
    const want = io.output;
    let diff = 0, scale = 0;
    const sameShape = JSON.stringify(result.dims) === JSON.stringify(want.shape);
    for (let i = 0; sameShape && i < want.data.length; ++i) {
      diff = Math.max(diff, Math.abs(result.data[i] - want.data[i]));
      scale = Math.max(scale, Math.abs(want.data[i]));
    }
    const rel = diff / Math.max(scale, 1e-6);
    const ok = sameShape && rel <= TOLERANCE;
    if (!ok) failed += 1;
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}: output [${result.dims}] (xgrad [${want.shape}]), ` +
                `max abs diff ${diff.toExponential(2)}, relative ${rel.toExponential(2)}`);
  }
  console.log(`ONNX Runtime ${ort.env.versions.node}: ${names.length - failed}/${names.length} models match xgrad`);
  if (failed) process.exit(1);
}

main().catch((e) => {
  console.error(`error: ${e.message}`);
  process.exit(1);
});
