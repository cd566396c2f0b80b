// Test accuracy of the main command's model.onnx in ONNX Runtime (CPU) on CIFAR-10's test batch:
// raw pixels scaled to [0, 1], the normalisation is inside the model.
// Usage: node tools/ort/cifar10.js MODEL.onnx CIFAR10_DIR [max_images]
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

async function main() {
  const [model, dataDir, limit] = process.argv.slice(2);
  if (!model || !dataDir) throw new Error('usage: node cifar10.js MODEL.onnx CIFAR10_DIR [max_images]');
  const data = fs.readFileSync(path.join(dataDir, 'test_batch.bin'));  // per image: label, 3072 pixels (CHW)
  const n = Math.min(data.length / 3073, Number(limit || Infinity));
  const session = await ort.InferenceSession.create(model);
  const batch = 500;
  let correct = 0;
  for (let start = 0; start < n; start += batch) {
    const b = Math.min(batch, n - start);
    const pixels = new Float32Array(b * 3072);
    for (let i = 0; i < b; ++i)
      for (let p = 0; p < 3072; ++p) pixels[i * 3072 + p] = data[(start + i) * 3073 + 1 + p] / 255;
    const out = await session.run({ input: new ort.Tensor('float32', pixels, [b, 3, 32, 32]) });
    const logits = out.logits.data;
    for (let i = 0; i < b; ++i) {
      let best = 0;
      for (let c = 1; c < 10; ++c) if (logits[i * 10 + c] > logits[i * 10 + best]) best = c;
      correct += best === data[(start + i) * 3073];
    }
  }
  console.log(`ONNX Runtime ${ort.env.versions.node}: test accuracy ${(100 * correct / n).toFixed(2)}% ` +
              `(${correct}/${n}) for ${model}`);
}

main().catch((e) => {
  console.error(`error: ${e.message}`);
  process.exit(1);
});
