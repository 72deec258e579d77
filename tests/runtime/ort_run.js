// Runs an ONNX model with ONNX Runtime (onnxruntime-node) on raw tensors described by
// DIR/inputs.json ([{name, type, dims, file}]), writes DIR/out_<i>.bin + DIR/outputs.json.
// Usage: node ort_run.js MODEL DIR [threads] [runs]   (runs > 0: also prints timing JSON)
const path = require('path');
const fs = require('fs');
const root = path.resolve(__dirname, '..', '..');
const ort = require(path.join(root, 'third_party/ort/node_modules/onnxruntime-node'));

const ctor = {float32: Float32Array, float64: Float64Array, int64: BigInt64Array, int32: Int32Array,
              int8: Int8Array, uint8: Uint8Array, bool: Uint8Array, float16: Uint16Array};

async function main() {
  const [model, dir, threadsArg, runsArg] = process.argv.slice(2);
  const threads = parseInt(threadsArg || '1');
  const runs = parseInt(runsArg || '0');
  const spec = JSON.parse(fs.readFileSync(path.join(dir, 'inputs.json')));
  const feeds = {};
  for (const s of spec) {
    const buf = fs.readFileSync(path.join(dir, s.file));
    const C = ctor[s.type];
    const arr = new C(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    feeds[s.name] = new ort.Tensor(s.type, arr, s.dims);
  }
  const sess = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all'});
  const out = await sess.run(feeds);
  const meta = [];
  sess.outputNames.forEach((name, i) => {
    const t = out[name];
    const file = `out_${i}.bin`;
    const data = t.data;
    fs.writeFileSync(path.join(dir, file), Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    meta.push({name, type: t.type, dims: t.dims.map(Number), file});
  });
  fs.writeFileSync(path.join(dir, 'outputs.json'), JSON.stringify(meta));
  if (runs > 0) {
    for (let i = 0; i < Math.min(3, runs); ++i) await sess.run(feeds);
    const times = [];
    for (let i = 0; i < runs; ++i) {
      const t0 = process.hrtime.bigint();
      await sess.run(feeds);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    times.sort((a, b) => a - b);
    const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
    console.log(JSON.stringify({median_ms: q(0.5), p90_ms: q(0.9), runs, threads}));
  }
}
main().catch((e) => { console.error('ort_run: ' + e.message); process.exit(1); });
