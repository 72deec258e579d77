// ONNX Runtime side of sherpa_export_test.cc: runs an offline encoder (x [1,T,F], x_lens [1]) on
// raw float32 features and writes encoder_out as raw float32.
//   node ort_encoder.js ENCODER.onnx FEATS.f32 T OUT.f32   -> prints {"frames", "dim", "lens"}
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require(path.join(__dirname, '..', '..', 'third_party', 'ort', 'node_modules', 'onnxruntime-node'));

async function main() {
  const [model, featsFile, tStr, out] = process.argv.slice(2);
  const T = parseInt(tStr, 10);
  const buf = fs.readFileSync(featsFile);
  const x = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  const sess = await ort.InferenceSession.create(model, {intraOpNumThreads: 1, interOpNumThreads: 1});
  const r = await sess.run({
    [sess.inputNames[0]]: new ort.Tensor('float32', x, [1, T, x.length / T]),
    [sess.inputNames[1]]: new ort.Tensor('int64', BigInt64Array.from([BigInt(T)]), [1]),
  });
  const e = r[sess.outputNames[0]], l = r[sess.outputNames[1]];
  fs.writeFileSync(out, Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength));
  console.log(JSON.stringify({frames: e.dims[1], dim: e.dims[2], lens: Number(l.data[0])}));
}

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
