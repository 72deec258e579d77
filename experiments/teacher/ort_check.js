// ONNX Runtime (onnxruntime-node) side of the export check: runs a bundle with the generic streaming
// protocol of docs/bundle.md on features written by check_export.py, and greedy-decodes both passes.
//   node experiments/teacher/ort_check.js BUNDLE_DIR WORK_DIR
// Reads WORK_DIR/meta.json and the *.f32 files; writes WORK_DIR/ort_out.json; prints a summary.
'use strict';
const fs = require('fs');
const path = require('path');
const ortPath = process.env.ORT_NODE ||
  path.join(__dirname, '..', '..', 'third_party', 'ort', 'node_modules', 'onnxruntime-node');
const ort = require(ortPath);

function readF32(file) {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
}
function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
function zeros(spec) {
  const n = spec.shape.reduce((x, y) => x * y, 1);
  if (spec.dtype === 'int64') return new ort.Tensor('int64', new BigInt64Array(n), spec.shape);
  return new ort.Tensor('float32', new Float32Array(n), spec.shape);
}

async function main() {
  const [bundle, work] = process.argv.slice(2);
  const mj = JSON.parse(fs.readFileSync(path.join(bundle, 'model.json')));
  const meta = JSON.parse(fs.readFileSync(path.join(work, 'meta.json')));
  const opts = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
  const sess = {};
  for (const [role, file] of Object.entries(mj.graphs)) sess[role] = await ort.InferenceSession.create(path.join(bundle, file), opts);
  const st = mj.streaming, dc = mj.decoding;
  const C = st.chunk_frames, R = st.right_context_frames, S = dc.subsampling_factor, F = mj.frontend.num_mel_bins;
  const out = { utts: [] };

  async function greedy(enc, T, D, maxSym) {
    let state = {};
    for (const s of dc.decoder_state) state[s.input] = zeros({ shape: s.shape, dtype: 'float32' });
    const hyp = [];
    async function runDec(y) {
      const feeds = Object.assign({ y: new ort.Tensor('int64', BigInt64Array.from([BigInt(y)]), [1, 1]) }, state);
      const r = await sess.decoder.run(feeds);
      const ns = {};
      for (const s of dc.decoder_state) ns[s.input] = r[s.output];
      state = ns;
      return r.decoder_out;
    }
    let dout = await runDec(dc.blank_id);
    for (let t = 0; t < T; t++) {
      const e = new ort.Tensor('float32', enc.slice(t * D, (t + 1) * D), [1, D]);
      for (let k = 0; k < maxSym; k++) {
        const r = await sess.joiner.run({ encoder_out: e, decoder_out: dout });
        const l = r.logit.data;
        let best = 0;
        for (let v = 1; v < l.length; v++) if (l[v] > l[best]) best = v;
        if (best === dc.blank_id) break;
        hyp.push(best);
        dout = await runDec(best);
      }
    }
    return hyp;
  }

  for (const u of meta.utts) {
    const feats = readF32(path.join(work, u.feats));
    const T = u.T;
    const n = Math.ceil(T / C);
    const total = n * C + R;
    const padded = new Float32Array(total * F).fill(st.pad_value);
    padded.set(feats);
    let caches = st.cache.map(zeros);
    const chunks = [];
    let D = 0;
    for (let k = 0; k < n; k++) {
      const x = new ort.Tensor('float32', padded.slice(k * C * F, (k * C + C + R) * F), [1, C + R, F]);
      const feeds = { x };
      st.cache.forEach((s, i) => { feeds[s.input] = caches[i]; });
      const r = await sess.encoder_causal.run(feeds);
      chunks.push(r.encoder_out.data);
      D = r.encoder_out.dims[2];
      caches = st.cache.map((s) => r[s.output]);
    }
    const Tp = Math.floor((T + S - 1) / S);
    const all = new Float32Array(chunks.length * chunks[0].length);
    chunks.forEach((c, i) => all.set(c, i * c.length));
    const enc = all.slice(0, Tp * D);
    const ref = readF32(path.join(work, u.ref_causal));
    const r2 = await sess.encoder_noncausal.run({
      x: new ort.Tensor('float32', enc, [1, Tp, D]),
      x_lens: new ort.Tensor('int64', BigInt64Array.from([BigInt(Tp)]), [1]),
    });
    const enc2 = r2.encoder_out.data;
    const ref2 = readF32(path.join(work, u.ref_noncausal));
    // non-causal on the PyTorch causal output too, to separate the two error sources
    const r2b = await sess.encoder_noncausal.run({
      x: new ort.Tensor('float32', ref, [1, Tp, D]),
      x_lens: new ort.Tensor('int64', BigInt64Array.from([BigInt(Tp)]), [1]),
    });
    const hs = await greedy(enc, Tp, D, meta.max_sym);
    const hl = await greedy(enc2, Tp, D, meta.max_sym);
    const res = {
      id: u.id, T, T_out: Tp, chunks: n,
      causal_max_abs_diff: maxAbsDiff(enc, ref),
      noncausal_max_abs_diff: maxAbsDiff(enc2, ref2),
      noncausal_same_input_max_abs_diff: maxAbsDiff(r2b.encoder_out.data, ref2),
      encoder_out_lens: Number(r2.encoder_out_lens.data[0]),
      hyp_streaming: hs, hyp_lookahead: hl,
      hyp_streaming_equal: JSON.stringify(hs) === JSON.stringify(u.hyp_streaming),
      hyp_lookahead_equal: JSON.stringify(hl) === JSON.stringify(u.hyp_lookahead),
    };
    out.utts.push(res);
  }
  // single-step decoder / joiner on random inputs
  {
    const d = meta.decoder_probe;
    const feeds = { y: new ort.Tensor('int64', BigInt64Array.from(d.y.map(BigInt)), [d.y.length, 1]) };
    dc.decoder_state.forEach((s, i) => {
      const shp = s.shape.slice(); shp[1] = d.y.length;
      feeds[s.input] = new ort.Tensor('float32', readF32(path.join(work, d.states[i])), shp);
    });
    const r = await sess.decoder.run(feeds);
    out.decoder_max_abs_diff = Math.max(maxAbsDiff(r.decoder_out.data, readF32(path.join(work, d.ref_out))),
      ...dc.decoder_state.map((s, i) => maxAbsDiff(r[s.output].data, readF32(path.join(work, d.ref_states[i])))));
    const j = meta.joiner_probe;
    const rj = await sess.joiner.run({
      encoder_out: new ort.Tensor('float32', readF32(path.join(work, j.enc)), j.enc_shape),
      decoder_out: new ort.Tensor('float32', readF32(path.join(work, j.dec)), j.dec_shape),
    });
    out.joiner_max_abs_diff = maxAbsDiff(rj.logit.data, readF32(path.join(work, j.ref)));
  }
  fs.writeFileSync(path.join(work, 'ort_out.json'), JSON.stringify(out, null, 1));
  for (const u of out.utts) {
    console.log(`${u.id}: T=${u.T} chunks=${u.chunks} causal_diff=${u.causal_max_abs_diff.toExponential(2)} ` +
      `noncausal_diff=${u.noncausal_max_abs_diff.toExponential(2)} hyps_equal=${u.hyp_streaming_equal}/${u.hyp_lookahead_equal}`);
  }
  console.log(`decoder_diff=${out.decoder_max_abs_diff.toExponential(2)} joiner_diff=${out.joiner_max_abs_diff.toExponential(2)}`);
}
main().catch((e) => { console.error(e); process.exit(1); });
