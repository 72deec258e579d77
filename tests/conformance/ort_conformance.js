// Runs the cases of a manifest written by ort_conformance.py in ONNX Runtime (onnxruntime-node)
// and compares with the stored outputs by conformance_test.cc's rules; prints
// {case: {ok, random, why}} as JSON. Usage: node ort_conformance.js MANIFEST
const path = require('path');
const fs = require('fs');
const root = path.resolve(__dirname, '..', '..');
const ort = require(path.join(root, 'third_party/ort/node_modules/onnxruntime-node'));

const ctor = {float32: Float32Array, float64: Float64Array, int8: Int8Array, uint8: Uint8Array,
              int16: Int16Array, uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array,
              int64: BigInt64Array, uint64: BigUint64Array, bool: Uint8Array, float16: Uint16Array};

function load(e) {
  if (e.type === 'string') return e.strings;
  const buf = fs.readFileSync(e.file);
  return new ctor[e.type](buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * Math.pow(2, -24);
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * Math.pow(2, e - 15);
}

// Empty when equal by conformance_test.cc's Compare; else the first difference.
function compare(got, want, random) {
  const gtype = got.type === 'float16' ? 'float16' : got.type;
  if (gtype !== want.type) return `dtype ${gtype} != ${want.type}`;
  const gd = got.dims.map(Number);
  if (JSON.stringify(gd) !== JSON.stringify(want.dims)) return `shape [${gd}] != [${want.dims}]`;
  if (random) return '';
  const w = load(want);
  let g = got.data;
  if (want.type === 'string') return JSON.stringify(Array.from(g)) === JSON.stringify(w) ? '' : 'strings differ';
  const float = want.type === 'float32' || want.type === 'float64' || want.type === 'float16';
  if (want.type === 'float16' && !(g instanceof Uint16Array)) g = new Uint16Array(g.buffer, g.byteOffset, g.length);
  for (let i = 0; i < w.length; ++i) {
    if (float) {
      const a = want.type === 'float16' ? halfToFloat(g[i]) : Number(g[i]);
      const b = want.type === 'float16' ? halfToFloat(w[i]) : Number(w[i]);
      if (Number.isNaN(a) && Number.isNaN(b)) continue;
      if (!Number.isFinite(b) && a === b) continue;
      if (!(Math.abs(a - b) <= 1e-5 + 1e-3 * Math.abs(b))) return `element ${i}: got ${a}, want ${b}`;
    } else if (BigInt.asIntN(64, BigInt(g[i])) !== BigInt.asIntN(64, BigInt(w[i]))) {
      return `element ${i}: got ${g[i]}, want ${w[i]}`;
    }
  }
  return '';
}

async function runCase(c) {
  let sess;
  try {
    sess = await ort.InferenceSession.create(c.model, {intraOpNumThreads: 1, interOpNumThreads: 1});
  } catch (e) {
    return `load: ${e.message.split('\n')[0]}`;
  }
  for (const s of c.sets) {
    const feeds = {};
    for (const e of s.inputs) feeds[e.name] = new ort.Tensor(e.type, load(e), e.dims);
    let out;
    try {
      out = await sess.run(feeds);
    } catch (e) {
      return `run: ${e.message.split('\n')[0]}`;
    }
    if (sess.outputNames.length < s.outputs.length) return `${sess.outputNames.length} outputs, expected ${s.outputs.length}`;
    for (let i = 0; i < s.outputs.length; ++i) {
      const why = compare(out[sess.outputNames[i]], s.outputs[i], c.random);
      if (why) return `output ${i}: ${why}`;
    }
  }
  return '';
}

async function main() {
  const manifest = JSON.parse(fs.readFileSync(process.argv[2]));
  const results = {};
  for (const c of manifest) {
    const why = await runCase(c);
    results[c.name] = {ok: why === '', random: c.random, why};
  }
  process.stdout.write(JSON.stringify(results));
}
main().catch((e) => { console.error('ort_conformance: ' + e.stack); process.exit(1); });
