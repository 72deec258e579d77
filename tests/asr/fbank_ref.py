"""Reference features for tests/asr/features_test.cc: torchaudio.compliance.kaldi.fbank with the
arguments of a bundle's frontend JSON, on audio read by torchaudio. Usage:
  fbank_ref.py FRONTEND.json OUT_PREFIX AUDIO...
writes OUT_PREFIX.<k>.f32 (the recipe's float32 computation) and OUT_PREFIX.<k>.f64 (the same
function on float64 input: torchaudio then computes in double, up to its float32 mel weights),
both raw float32 row-major [T, bins], and prints T per file."""
import json
import sys

import torch
import torchaudio

fe = json.load(open(sys.argv[1]))
kw = dict(num_mel_bins=fe["num_mel_bins"], frame_length=fe["frame_length_ms"],
          frame_shift=fe["frame_shift_ms"], sample_frequency=float(fe["sample_rate"]),
          window_type=fe["window_type"], low_freq=fe["low_freq"], high_freq=fe["high_freq"],
          dither=fe["dither"], snip_edges=fe["snip_edges"],
          preemphasis_coefficient=fe["preemphasis_coefficient"],
          remove_dc_offset=fe["remove_dc_offset"], round_to_power_of_two=fe["round_to_power_of_two"],
          use_energy=fe["use_energy"], use_log_fbank=fe["use_log_fbank"], use_power=fe["use_power"],
          energy_floor=fe["energy_floor"])
for k, path in enumerate(sys.argv[3:]):
    w, sr = torchaudio.load(path)
    assert sr == fe["sample_rate"], (path, sr)
    x = w[:1] * fe["waveform_scale"]
    f = torchaudio.compliance.kaldi.fbank(x, **kw)
    f.contiguous().numpy().astype("float32").tofile("%s.%d.f32" % (sys.argv[2], k))
    f64 = torchaudio.compliance.kaldi.fbank(x.double(), **kw)
    f64.contiguous().numpy().astype("float32").tofile("%s.%d.f64" % (sys.argv[2], k))
    print(f.shape[0])
