// Decodes a NeMo-style manifest with sherpa-onnx itself (npm sherpa-onnx-node, OfflineRecognizer,
// transducer, greedy_search, 1 thread) from a model folder in sherpa-onnx's layout (encoder.onnx,
// decoder.onnx, joiner.onnx, tokens.txt) — the reference for `asrc export --format sherpa-onnx`.
//   node sherpa_decode.js MODEL_DIR MANIFEST.jsonl OUT.json [--split S] [--limit N] [--scale X]
// --scale X multiplies the samples by X (diagnostics: X = 32768 does what sherpa-onnx's C++ option
// normalize_samples=false does, which the node API does not expose).
// Audio: FLAC/WAV decoded to 16-bit PCM by the `flac` tool (WAV read as is), samples / 32768 as
// libsndfile gives them. Timing covers acceptWaveform + decode (features, encoder, search), not
// file reading; RTF = that time / audio duration. OUT.json: {utterances: [{id, text, tokens,
// duration_s, ms}], audio_s, ms, cpu_ms, rtf, cpu_rtf}.
'use strict';
const fs = require('fs');
const path = require('path');
const {execFileSync} = require('child_process');

const root = path.resolve(__dirname, '..', '..');
const sherpa = require(path.join(root, 'third_party/ort/node_modules/sherpa-onnx-node'));

function parseArgs(argv) {
  const a = {pos: [], split: '', limit: 0, scale: 1};
  for (let i = 0; i < argv.length; ++i) {
    if (argv[i] === '--split') a.split = argv[++i];
    else if (argv[i] === '--limit') a.limit = parseInt(argv[++i], 10);
    else if (argv[i] === '--scale') a.scale = parseFloat(argv[++i]);
    else a.pos.push(argv[i]);
  }
  if (a.pos.length !== 3) throw new Error('usage: sherpa_decode.js MODEL_DIR MANIFEST OUT.json [--split S] [--limit N]');
  return a;
}

// 16-bit PCM WAV bytes -> {samples: Float32Array in [-1, 1), sampleRate}
function parseWav(buf, name) {
  if (buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE')
    throw new Error(name + ': not a WAV stream');
  let off = 12, fmt = null;
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4);
    let size = buf.readUInt32LE(off + 4);
    const body = off + 8;
    if (id === 'fmt ') {
      fmt = {channels: buf.readUInt16LE(body + 2), rate: buf.readUInt32LE(body + 4), bits: buf.readUInt16LE(body + 14)};
    } else if (id === 'data') {
      if (!fmt || fmt.bits !== 16) throw new Error(name + ': expected 16-bit PCM');
      if (size === 0 || size === 0xffffffff || body + size > buf.length) size = buf.length - body;  // streamed WAV
      const frames = Math.floor(size / (2 * fmt.channels));
      const out = new Float32Array(frames);
      for (let i = 0; i < frames; ++i) {
        let s = 0;
        for (let c = 0; c < fmt.channels; ++c) s += buf.readInt16LE(body + 2 * (i * fmt.channels + c));
        out[i] = s / fmt.channels / 32768;
      }
      return {samples: out, sampleRate: fmt.rate};
    }
    off = body + size + (size & 1);
  }
  throw new Error(name + ': no data chunk');
}

function readAudio(file) {
  const bytes = file.endsWith('.wav') ? fs.readFileSync(file)
                                      : execFileSync('flac', ['-d', '-c', '-s', file], {maxBuffer: 1 << 30});
  return parseWav(bytes, file);
}

function main() {
  const a = parseArgs(process.argv.slice(2));
  const [modelDir, manifest, outPath] = a.pos;
  const base = path.dirname(path.resolve(manifest));
  let items = fs.readFileSync(manifest, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  if (a.split) items = items.filter((u) => u.split === a.split);
  if (a.limit > 0) items = items.slice(0, a.limit);
  const recognizer = new sherpa.OfflineRecognizer({
    featConfig: {sampleRate: 16000, featureDim: 80},
    modelConfig: {
      transducer: {
        encoder: path.join(modelDir, 'encoder.onnx'),
        decoder: path.join(modelDir, 'decoder.onnx'),
        joiner: path.join(modelDir, 'joiner.onnx'),
      },
      tokens: path.join(modelDir, 'tokens.txt'),
      numThreads: 1,
      provider: 'cpu',
      debug: 0,
    },
    decodingMethod: 'greedy_search',
  });
  const out = {model: modelDir, manifest, utterances: [], audio_s: 0, ms: 0, cpu_ms: 0};
  for (const u of items) {
    const file = path.isAbsolute(u.audio_filepath) ? u.audio_filepath : path.join(base, u.audio_filepath);
    const wave = readAudio(file);
    if (a.scale !== 1) wave.samples = wave.samples.map((v) => v * a.scale);
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const stream = recognizer.createStream();
    stream.acceptWaveform({samples: wave.samples, sampleRate: wave.sampleRate});
    recognizer.decode(stream);
    const r = recognizer.getResult(stream);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const c = process.cpuUsage(c0);
    const dur = wave.samples.length / wave.sampleRate;
    out.utterances.push({id: u.id, reference: u.text, text: r.text, tokens: r.tokens, duration_s: dur, ms});
    out.audio_s += dur;
    out.ms += ms;
    out.cpu_ms += (c.user + c.system) / 1000;
  }
  out.rtf = out.audio_s > 0 ? out.ms / 1000 / out.audio_s : null;
  out.cpu_rtf = out.audio_s > 0 ? out.cpu_ms / 1000 / out.audio_s : null;
  fs.writeFileSync(outPath, JSON.stringify(out, null, 1) + '\n');
  console.log(`sherpa-onnx: ${out.utterances.length} utterances, ${out.audio_s.toFixed(1)} s audio, RTF ${out.rtf && out.rtf.toFixed(4)}`);
}

main();
