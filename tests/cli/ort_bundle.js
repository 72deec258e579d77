// ONNX Runtime side of tar_decoder_test.py: every graph of a bundle must load and run.
// node ort_bundle.js BUNDLE: runs every graph of a bundle in ONNX Runtime on seeded inputs
// (symbolic dims: N=1, T=8; int64 inputs: blank labels / lengths = T / offset 0); prints output shapes
// and whether all outputs are finite.
const path = require('path');
const fs = require('fs');
const ort = require(path.join(__dirname, '..', '..', 'third_party', 'ort', 'node_modules', 'onnxruntime-node'));
(async () => {
  const dir = process.argv[2];
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'model.json')));
  for (const [role, file] of Object.entries(cfg.graphs)) {
    const s = await ort.InferenceSession.create(path.join(dir, file));
    const feeds = {};
    const meta = s.inputMetadata || [];
    for (const name of s.inputNames) {
      const m = Array.isArray(meta) ? meta.find((x) => x.name === name) : meta[name];
      const dims = m.shape.map((d) => (typeof d === 'number' ? d : d === 'T' ? 8 : 1));
      const n = dims.reduce((a, b) => a * b, 1);
      if (m.type === 'int64') {
        const v = name === 'x_lens' ? 8n : 0n;
        feeds[name] = new ort.Tensor('int64', new BigInt64Array(n).fill(v), dims);
      } else {
        feeds[name] = new ort.Tensor('float32', Float32Array.from({length: n}, (_, i) => Math.sin(0.37 * i)), dims);
      }
    }
    const out = await s.run(feeds);
    const shapes = s.outputNames.map((o) => `${o}${JSON.stringify(out[o].dims)}`);
    const finite = s.outputNames.every((o) => out[o].type !== 'float32' || out[o].data.every(Number.isFinite));
    console.log(`${role}: ${file} ok, outputs ${shapes.join(' ')}, finite ${finite}`);
  }
})().catch((e) => { console.error('ort_bundle: ' + e.message); process.exit(1); });
