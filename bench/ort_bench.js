// Times ONNX Runtime (onnxruntime-node, CPU) on one model with the inputs written by
// make_models.py (inputs.json + raw .bin files); prints one JSON line like `asrc bench --json`.
//   node bench/ort_bench.js MODEL.onnx INPUT_DIR --threads N --runs N [--warmup N]
//                           [--save-outputs DIR]   (raw .bin outputs + outputs.json, for parity)
//                           [--opt all|extended|basic|disabled]   (ORT graph optimization level)
'use strict';
const fs = require('fs');
const path = require('path');
const root = path.resolve(__dirname, '..');
const ort = require(path.join(root, 'third_party/ort/node_modules/onnxruntime-node'));

function arg(name, def) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const ARRAYS = { float32: Float32Array, int64: BigInt64Array, int32: Int32Array, uint8: Uint8Array, int8: Int8Array };

async function main() {
  const model = process.argv[2];
  const inputDir = process.argv[3];
  if (!model || !inputDir) {
    console.error('usage: ort_bench.js MODEL.onnx INPUT_DIR [--threads N] [--runs N]');
    process.exit(2);
  }
  const threads = parseInt(arg('--threads', '1'), 10);
  const runs = parseInt(arg('--runs', '50'), 10);
  const warmup = parseInt(arg('--warmup', '5'), 10);
  const meta = JSON.parse(fs.readFileSync(path.join(inputDir, 'inputs.json'), 'utf8'));
  const feeds = {};
  for (const m of meta) {
    const buf = fs.readFileSync(path.join(inputDir, m.file));
    const Arr = ARRAYS[m.dtype];
    if (!Arr) throw new Error(`${m.file}: unsupported dtype ${m.dtype}`);
    const data = new Arr(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    feeds[m.name] = new ort.Tensor(m.dtype, data, m.shape);
  }
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: arg('--opt', 'all'),
  });
  let out;
  for (let i = 0; i < warmup; ++i) out = await session.run(feeds);
  const times = [];
  const cpu = [];
  for (let i = 0; i < runs; ++i) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    out = await session.run(feeds);
    const t1 = process.hrtime.bigint();
    const c1 = process.cpuUsage(c0);
    times.push(Number(t1 - t0) / 1e6);
    cpu.push((c1.user + c1.system) / 1000);
  }
  times.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
  const saveDir = arg('--save-outputs', null);
  if (saveDir) {
    fs.mkdirSync(saveDir, { recursive: true });
    const outMeta = [];
    for (const [name, t] of Object.entries(out)) {
      fs.writeFileSync(path.join(saveDir, name + '.bin'), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      outMeta.push({ name, dtype: t.type, shape: t.dims, file: name + '.bin' });
    }
    fs.writeFileSync(path.join(saveDir, 'outputs.json'), JSON.stringify(outMeta));
  }
  console.log(JSON.stringify({
    median_ms: q(0.5), p90_ms: q(0.9), runs, threads, cpu_ms: cpu[Math.floor(cpu.length / 2)],
    peak_rss_mb: process.memoryUsage().rss / 1048576, ort_version: ort.env.versions ? ort.env.versions.common : 'unknown',
  }));
}

main().catch((e) => {
  console.error(`ort_bench: ${e.message}`);
  process.exit(1);
});
