#!/usr/bin/env bash
# Peak memory and real-time factor of `asrc transcribe` on long audio (issue 17), and what
# segmenting the look-ahead pass costs in WER. Usage (from anywhere):
#   nice -n 10 experiments/long_audio/run.sh [OUT]      (OUT: where audio and logs go; /tmp/asrc_long)
# Environment: ASRC (binary; build/apps/asrc/asrc), BUNDLE (the demo teacher), CATHY (the Cathy
# corpus, /work/shared/data/cathy), FULL_MINUTES (lengths also run with whole-utterance look-ahead,
# --lookahead-segment 0; default "2 10": full attention at 30 minutes needs tens of GiB), LOGS
# (where transcripts, time logs and WER reports go; OUT), WER (0: skip the WER table). A single-encoder (`transducer`) bundle
# has no streaming mode: its streaming rows are left out (single_encoder.sh runs one).
# Prints two markdown tables (RESULTS.md has them): memory/RTF per length and mode, and WER of the
# 2-minute test recordings per segment/context setting. Peak memory is /usr/bin/time -v's maximum
# resident set size; RTF is wall time / audio time (the machine may be shared: CPU RTF, user+sys
# over audio time, is the steadier number).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ASRC=${ASRC:-$ROOT/build/apps/asrc/asrc}
BUNDLE=${BUNDLE:-$ROOT/experiments/teacher/bundle}
CATHY=${CATHY:-/work/shared/data/cathy}
FULL_MINUTES=${FULL_MINUTES:-"2 10"}
WER=${WER:-1}
OUT=${1:-/tmp/asrc_long}
LOGS=${LOGS:-$OUT}
mkdir -p "$OUT" "$LOGS"
MODEL_TYPE=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["model_type"])' \
  "$BUNDLE/model.json")
/usr/bin/python3 "$ROOT/experiments/long_audio/make_long.py" "$CATHY" "$OUT"

# measure NAME ARGS...: runs `asrc transcribe ARGS` under /usr/bin/time -v; prints a table row.
measure() {
  local name=$1 audio_s=$2
  shift 2
  local log="$LOGS/$name.time"
  /usr/bin/time -v "$ASRC" transcribe "$BUNDLE" --timing "$@" > "$LOGS/$name.txt" 2> "$log"
  /usr/bin/python3 - "$log" "$audio_s" "$name" <<'PY'
import re, sys
log, audio, name = open(sys.argv[1]).read(), float(sys.argv[2]), sys.argv[3]
get = lambda pat: re.search(pat, log).group(1)
rss = int(get(r"Maximum resident set size \(kbytes\): (\d+)")) / 1024
cpu = float(get(r"User time \(seconds\): ([\d.]+)")) + float(get(r"System time \(seconds\): ([\d.]+)"))
wall = get(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)").split(":")
wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall)))
print(f"| {name} | {audio / 60:.1f} | {rss:.0f} | {wall / audio:.4f} | {cpu / audio:.4f} |")
PY
}

echo "| run | audio min | peak RSS MiB | RTF (wall) | RTF (CPU) |"
echo "|---|---|---|---|---|"
for m in 2 10 30; do
  f="$OUT/long_${m}min.flac"
  secs=$(soxi -D "$f")
  [ "$MODEL_TYPE" = transducer ] || measure "${m}min streaming" "$secs" --mode streaming "$f"
  measure "${m}min lookahead (segmented, default)" "$secs" --mode lookahead "$f"
  [ "$MODEL_TYPE" = transducer ] || measure "${m}min both (one pass)" "$secs" --mode both "$f"
  case " $FULL_MINUTES " in
    *" $m "*) measure "${m}min lookahead (whole, --lookahead-segment 0)" "$secs" --mode lookahead \
                --lookahead-segment 0 "$f" ;;
  esac
done

[ "$WER" = 0 ] && exit 0
echo
echo "WER of look-ahead on $(wc -l < "$OUT/test_2min.jsonl") ~2-minute recordings (the Cathy test split, concatenated):"
echo "| --lookahead-segment s | --lookahead-context s | WER % | CER % |"
echo "|---|---|---|---|"
for sc in "0 0" "60 10" "40 5" "20 5" "10 2" "5 1"; do
  set -- $sc
  "$ASRC" eval "$BUNDLE" --data "$OUT/test_2min.jsonl" --mode lookahead --no-progress \
    --lookahead-segment "$1" --lookahead-context "$2" --json "$LOGS/wer_$1_$2.json" > /dev/null
  /usr/bin/python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['lookahead']; print(f\"| $1 | $2 | {r['wer']:.2f} | {r['cer']:.2f} |\")" \
    "$LOGS/wer_$1_$2.json"
done
short_mode=both
[ "$MODEL_TYPE" = transducer ] && short_mode=lookahead
"$ASRC" eval "$BUNDLE" --data "$OUT/test_short.jsonl" --mode "$short_mode" --no-progress --json "$LOGS/wer_short.json" \
  > /dev/null
/usr/bin/python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(f\"| the same utterances one by one | | {r['lookahead']['wer']:.2f} | {r['lookahead']['cer']:.2f} |\")" \
  "$LOGS/wer_short.json"
