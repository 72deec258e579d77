// Runs an ONNX model with ONNX Runtime (onnxruntime-node) for the pass tests.
// Usage: node ort_eval.js MODEL DIR — reads DIR/inputs.json ([{name, type, dims, file}], raw
// little-endian tensors in DIR/<file>), writes DIR/out_<i>.bin and DIR/outputs.json.
const path = require('path');
const fs = require('fs');
const root = path.resolve(__dirname, '..', '..');
const ort = require(path.join(root, 'third_party/ort/node_modules/onnxruntime-node'));
const ctor = {float32: Float32Array, int64: BigInt64Array, int32: Int32Array, int8: Int8Array,
              uint8: Uint8Array};

async function main() {
  const [model, dir] = process.argv.slice(2);
  const spec = JSON.parse(fs.readFileSync(path.join(dir, 'inputs.json')));
  const feeds = {};
  for (const s of spec) {
    const buf = fs.readFileSync(path.join(dir, s.file));
    const C = ctor[s.type];
    feeds[s.name] = new ort.Tensor(s.type, new C(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength)), s.dims);
  }
  // Basic optimizations only: ORT's QDQ fusion would change the arithmetic we compare against.
  const sess = await ort.InferenceSession.create(model, {intraOpNumThreads: 1, graphOptimizationLevel: 'basic'});
  const out = await sess.run(feeds);
  const meta = [];
  sess.outputNames.forEach((name, i) => {
    const d = out[name].data;
    fs.writeFileSync(path.join(dir, `out_${i}.bin`), Buffer.from(d.buffer, d.byteOffset, d.byteLength));
    meta.push({name, type: out[name].type, dims: out[name].dims.map(Number), file: `out_${i}.bin`});
  });
  fs.writeFileSync(path.join(dir, 'outputs.json'), JSON.stringify(meta));
}
main().catch((e) => { console.error('ort_eval: ' + e.message); process.exit(1); });
