#!/usr/bin/env bash
# Long audio on a single-encoder (`transducer`) bundle (issue 17): run.sh's tables (peak memory,
# RTF, WER of segmented vs whole look-ahead) on the stand-in stateless teacher
# (experiments/export/make_stateless_teacher.py: the demo teacher with its LSTM decoder run over
# the last 2 labels; readable hypotheses, unlike the untrained tar-decoder student) exported with
# `asrc export --format sherpa-onnx` (one encoder: the cascade merged into a Loop + the non-causal
# encoder, features in, frames subsampled by 4 out), then one 2-minute test recording transcribed
# whole and in default segments, and the words that differ. Usage (from anywhere):
#   nice -n 10 experiments/long_audio/single_encoder.sh [OUT]      (audio as run.sh; logs in OUT/single)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ASRC=${ASRC:-$ROOT/build/apps/asrc/asrc}
OUT=${1:-/tmp/asrc_long}
S="$OUT/single"
mkdir -p "$S"
[ -d "$S/stand_in" ] || /usr/bin/python3 "$ROOT/experiments/export/make_stateless_teacher.py" "$S/stand_in" > /dev/null
[ -d "$S/stand_in.sherpa" ] || "$ASRC" export --format sherpa-onnx "$S/stand_in" "$S/stand_in.sherpa" > /dev/null
ASRC="$ASRC" BUNDLE="$S/stand_in.sherpa" LOGS="$S" "$ROOT/experiments/long_audio/run.sh" "$OUT"

f="$OUT/test_2min_0.flac"
"$ASRC" transcribe "$S/stand_in.sherpa" "$f" --lookahead-segment 0 --timing > "$S/whole_2min.txt" 2> "$S/whole_2min.log"
"$ASRC" transcribe "$S/stand_in.sherpa" "$f" --timing > "$S/segmented_2min.txt" 2> "$S/segmented_2min.log"
echo
echo "$(basename "$f"): whole vs default segments ($(grep -o '[0-9]* look-ahead segments' "$S/segmented_2min.log")):"
/usr/bin/python3 - "$S/whole_2min.txt" "$S/segmented_2min.txt" "$OUT/test_2min.jsonl" <<'PY'
import difflib, json, sys
whole, seg = (open(p).read().split("\t", 1)[1].split() for p in sys.argv[1:3])
ref = json.loads(open(sys.argv[3]).readline())["text"].split()
def errors(hyp):  # word edit distance to the reference
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[-1]
sm = difflib.SequenceMatcher(a=whole, b=seg, autojunk=False)
changed = [(op, " ".join(whole[i1:i2]), " ".join(seg[j1:j2])) for op, i1, i2, j1, j2 in sm.get_opcodes() if op != "equal"]
same = sum(b.size for b in sm.get_matching_blocks())
print(f"words: whole {len(whole)}, segmented {len(seg)}, in common {same}; reference {len(ref)} words, "
      f"errors whole {errors(whole)}, segmented {errors(seg)}")
for op, a, b in changed:
    print(f"  {op}: whole '{a}' -> segmented '{b}'")
PY
