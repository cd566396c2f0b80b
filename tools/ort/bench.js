// ONNX Runtime's half of the inference benchmark (scripts/bench_ort.sh; bench/bench_inference.cpp is
// xgrad's): DIR/NAME.onnx on the batch in DIR/NAME.io.safetensors, in ONNX Runtime's CPU provider
// with T intra-op threads. The output is first checked against xgrad's (relative 1e-4, as check.js);
// then the session runs for S seconds and one JSON line gives the median images/s.
// Usage: node tools/ort/bench.js DIR NAME [--threads T] [--seconds S] [--optimization all|disabled]
'use strict';
const path = require('path');
const ort = require('onnxruntime-node');
const { readSafetensors } = require('./safetensors');

const TOLERANCE = 1e-4;

function parseArgs(argv) {
  const [dir, name, ...rest] = argv;
  if (!dir || !name) throw new Error('usage: node bench.js DIR NAME [--threads T] [--seconds S] [--optimization all|disabled]');
  const opts = { dir, name, threads: 2, seconds: 3, optimization: 'all' };
  for (let i = 0; i < rest.length; i += 2) {
    const value = rest[i + 1];
    if (value === undefined) throw new Error(`flag ${rest[i]} needs a value`);
    if (rest[i] === '--threads') opts.threads = Number(value);
    else if (rest[i] === '--seconds') opts.seconds = Number(value);
    else if (rest[i] === '--optimization' && ['all', 'disabled'].includes(value)) opts.optimization = value;
    else throw new Error(`unknown flag or value: ${rest[i]} ${value}`);
  }
  return opts;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const io = readSafetensors(path.join(o.dir, `${o.name}.io.safetensors`));
  const session = await ort.InferenceSession.create(path.join(o.dir, `${o.name}.onnx`), {
    executionProviders: ['cpu'],
    intraOpNumThreads: o.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: o.optimization,
  });
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', io.input.data, io.input.shape) };
  const run = async () => (await session.run(feeds))[session.outputNames[0]];

  const got = await run(), want = io.output;
  if (JSON.stringify(got.dims) !== JSON.stringify(want.shape))
    throw new Error(`${o.name}: output [${got.dims}], xgrad's [${want.shape}]`);
  let diff = 0, scale = 0;
  for (let i = 0; i < want.data.length; ++i) {
    diff = Math.max(diff, Math.abs(got.data[i] - want.data[i]));
    scale = Math.max(scale, Math.abs(want.data[i]));
  }
  const rel = diff / Math.max(scale, 1e-6);
  if (!(rel <= TOLERANCE)) throw new Error(`${o.name}: ONNX Runtime's output differs from xgrad's by ${rel} relative`);

  await run();  // warm-up (the check above was the first)
  const times = [];
  const start = process.hrtime.bigint();
  const elapsed = () => Number(process.hrtime.bigint() - start) / 1e9;
  while (times.length < 5 || elapsed() < o.seconds) {
    const s = process.hrtime.bigint();
    await run();
    times.push(Number(process.hrtime.bigint() - s) / 1e9);
  }
  times.sort((a, b) => a - b);
  const batch = io.input.shape[0];
  console.log(JSON.stringify({ ips: batch / times[times.length >> 1], rel_diff: rel, runs: times.length,
                               version: ort.env.versions.node }));
}

main().catch((e) => {
  console.error(`error: ${e.message}`);
  process.exit(1);
});
