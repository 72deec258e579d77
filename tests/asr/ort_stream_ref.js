// ONNX Runtime reference for tests/asr/stream_test.cc: runs a bundle (docs/bundle.md) on given
// features with the chunk protocol, the non-causal encoder, and greedy search on both outputs.
//   node ort_stream_ref.js BUNDLE FEATS.f32 T OUT_PREFIX MAX_SYM
// Writes OUT_PREFIX.causal.f32 [T', D], OUT_PREFIX.noncausal.f32 [T', D] and prints JSON
// {"streaming": [ids], "lookahead": [ids], "frames": T', "dim": D}.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require(path.join(__dirname, '..', '..', 'third_party', 'ort', 'node_modules', 'onnxruntime-node'));

function tensorZeros(spec) {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  if ((spec.dtype || 'float32') === 'int64') return new ort.Tensor('int64', new BigInt64Array(n), spec.shape);
  return new ort.Tensor('float32', new Float32Array(n), spec.shape);
}

async function main() {
  const [bundle, featsFile, tStr, outPrefix, maxSymStr] = process.argv.slice(2);
  const T = parseInt(tStr, 10), maxSym = parseInt(maxSymStr || '5', 10);
  const mj = JSON.parse(fs.readFileSync(path.join(bundle, 'model.json'), 'utf8'));
  const opts = { intraOpNumThreads: 1, interOpNumThreads: 1 };
  const s = {};
  for (const [role, file] of Object.entries(mj.graphs)) s[role] = await ort.InferenceSession.create(path.join(bundle, file), opts);
  const buf = fs.readFileSync(featsFile);
  const feats = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  const F = feats.length / T;
  const st = mj.streaming, dc = mj.decoding;
  const C = st.chunk_frames, R = st.right_context_frames, sub = dc.subsampling_factor;
  const n = Math.ceil(T / C), tOut = Math.ceil(T / sub);
  let caches = st.cache.map(tensorZeros);
  const chunks = [];
  let D = 0;
  for (let k = 0; k < n; k++) {
    const x = new Float32Array((C + R) * F);
    for (let r = 0; r < C + R; r++) {
      const f = k * C + r;
      for (let j = 0; j < F; j++) x[r * F + j] = f < T ? feats[f * F + j] : st.pad_value;
    }
    const feeds = { x: new ort.Tensor('float32', x, [1, C + R, F]) };
    st.cache.forEach((c, i) => { feeds[c.input] = caches[i]; });
    const out = await s.encoder_causal.run(feeds);
    caches = st.cache.map((c) => out[c.output]);
    D = out.encoder_out.dims[2];
    chunks.push(out.encoder_out.data);
  }
  const causal = new Float32Array(tOut * D);
  let pos = 0;
  for (const c of chunks) {
    const take = Math.min(c.length, causal.length - pos);
    causal.set(c.subarray(0, take), pos);
    pos += take;
  }
  const nc = await s.encoder_noncausal.run({
    x: new ort.Tensor('float32', causal, [1, tOut, D]),
    x_lens: new ort.Tensor('int64', BigInt64Array.from([BigInt(tOut)]), [1]),
  });
  const look = nc.encoder_out.data;
  fs.writeFileSync(outPrefix + '.causal.f32', Buffer.from(causal.buffer));
  fs.writeFileSync(outPrefix + '.noncausal.f32', Buffer.from(look.buffer, look.byteOffset, look.byteLength));

  async function greedy(enc) {
    let state = {};
    for (const sp of dc.decoder_state || []) state[sp.input] = tensorZeros(sp);
    const ctxSize = dc.decoder_type === 'lstm' ? 1 : dc.context_size;
    const ys = new Array(ctxSize).fill(dc.blank_id);
    async function dec() {
      const y = BigInt64Array.from(ys.slice(ys.length - ctxSize).map((v) => BigInt(v)));
      const feeds = Object.assign({ y: new ort.Tensor('int64', y, [1, ctxSize]) }, state);
      const r = await s.decoder.run(feeds);
      const ns = {};
      for (const sp of dc.decoder_state || []) ns[sp.input] = r[sp.output];
      state = ns;
      return r.decoder_out;
    }
    let d = await dec();
    for (let t = 0; t < tOut; t++) {
      const e = new ort.Tensor('float32', enc.slice(t * D, (t + 1) * D), [1, D]);
      for (let k = 0; k < maxSym; k++) {
        const l = (await s.joiner.run({ encoder_out: e, decoder_out: d })).logit.data;
        let best = 0;
        for (let v = 1; v < l.length; v++) if (l[v] > l[best]) best = v;
        if (best === dc.blank_id) break;
        ys.push(best);
        d = await dec();
      }
    }
    return ys.slice(ctxSize);
  }
  const res = { streaming: await greedy(causal), lookahead: await greedy(look), frames: tOut, dim: D };
  console.log(JSON.stringify(res));
}
main().catch((e) => { console.error(e); process.exit(1); });
