#!/usr/bin/env bash
# asrc ablate end to end on the demo teacher (2 utterances, one evaluation per model): bad input
# is refused before anything is written; a study killed halfway and re-run with the same command
# runs the unfinished configurations only (finished results untouched); the report is complete and
# self-contained.
set -euo pipefail
ASRC=$1
ROOT=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
P=$ROOT/experiments/pipelines/ablate-demo.json
fail() { echo "FAIL: $*"; exit 1; }

# expect_error SUBSTRING ARGS...: exit code 1, the message, and no output folder.
expect_error() {
  local want=$1; shift
  if "$ASRC" ablate "$@" > "$T/o" 2> "$T/e"; then fail "accepted: $*"; fi
  grep -qF -- "$want" "$T/e" || fail "the error for '$*' lacks '$want': $(cat "$T/e")"
  [ ! -e "$T/bad" ] || fail "'$*' wrote $T/bad"
}
cat > "$T/dup.json" <<'J'
{"passes": [{"pass": "cleanup", "step": "a"}, {"pass": "prune", "step": "b"}, {"pass": "quantize-int8", "step": "a"}]}
J
cat > "$T/one.json" <<'J'
{"passes": [{"pass": "cleanup", "step": "a"}, {"pass": "quantize-int8", "step": "a"}]}
J
expect_error "\$.passes[2].step: step 'a' used twice (first at \$.passes[0])" --pipeline "$T/dup.json" --out "$T/bad"
expect_error "--mode leave-one-out: the pipeline has one step ('a')" --pipeline "$T/one.json" --mode leave-one-out --out "$T/bad"
expect_error "--jobs 0: need at least 1 job" --pipeline "$P" --jobs 0 --out "$T/bad"
mkdir "$T/holder"
cp -r "$ROOT/experiments/teacher/bundle" "$T/holder/bundle"
expect_error "would overwrite the input" --pipeline "$P" --model "$T/holder/bundle" --out "$T/holder"
[ "$(ls "$T/holder")" = bundle ] || fail "the folder holding the model was written to"
D=$ROOT/experiments/data/default_eval/manifest.jsonl
expect_error "eval set name 'x' used twice" --pipeline "$P" --eval "x=$D" --eval "x=$D:test" --out "$T/bad"
expect_error "with several --eval sets, name each one" --pipeline "$P" --eval "$D" --eval "y=$D" --out "$T/bad"
expect_error "--eval y: eval manifest '$T/none.jsonl' does not exist" --pipeline "$P" --eval "x=$D" --eval "y=$T/none.jsonl" --out "$T/bad"
expect_error "--no-eval and --no-wer" --pipeline "$P" --no-eval --no-wer --out "$T/bad"

ARGS=(ablate --pipeline "$P" --mode cumulative --jobs 1 --eval-limit 2 --eval-repeat 1 --out "$T/s")
run() { "$ASRC" "${ARGS[@]}"; }
# Kill the study once the input and one configuration are finished (of four).
"$ASRC" "${ARGS[@]}" > /dev/null 2> "$T/first.err" &
PID=$!
for _ in $(seq 1 1200); do
  n=$( (ls "$T"/s/configs/*/result.json 2> /dev/null || true) | wc -l)
  [ "$n" -ge 2 ] && break
  sleep 0.05
done
kill -TERM "$PID"
wait "$PID" || true
sleep 0.2
pgrep -f -- "--out $T/s" > /dev/null && fail "a configuration process outlived the killed study"
before=$(cd "$T/s/configs" && ls -- */result.json | sort)
n=$(echo "$before" | wc -l)
[ "$n" -ge 2 ] && [ "$n" -lt 4 ] || fail "expected 2 or 3 finished configurations at the kill, got $n"
sums=$(cd "$T/s/configs" && md5sum $before && stat -c '%n %Y' $before)

# --report-only: the rows finished so far, the rest named, nothing run.
"$ASRC" "${ARGS[@]}" --report-only > "$T/partial.md" 2> /dev/null
grep -qF "**Not finished yet** (no row): " "$T/partial.md" || fail "--report-only did not name the unfinished"
grep -qF "steps-1-2-3 (full pipeline)" "$T/partial.md" || fail "--report-only: steps-1-2-3 not listed as unfinished"
[ "$(ls "$T"/s/configs/*/result.json | wc -l)" = "$n" ] || fail "--report-only ran a configuration"

run > "$T/md" 2> "$T/second.err"
grep -qF "ablate: 4 configurations over 3 steps, $n already finished, $((4 - n)) to run" "$T/second.err" ||
  fail "the re-run did not resume: $(cat "$T/second.err")"
[ "$(cd "$T/s/configs" && md5sum $before && stat -c '%n %Y' $before)" = "$sums" ] ||
  fail "finished configurations were redone"
[ "$(ls "$T"/s/configs/*/result.json | wc -l)" = 4 ] || fail "not every configuration finished"
run > /dev/null 2> "$T/third.err"
grep -qF "4 already finished, 0 to run" "$T/third.err" || fail "a finished study ran again: $(cat "$T/third.err")"

# A configuration starts from its finished prefix's model (1-2-3 from 1-2: int8 alone on it).
grep -qF "steps-1-2-3 starts from steps-1-2's model" "$T/s/configs/steps-1-2-3.log" || fail "no prefix start"

# A further eval set on the finished study: no configuration is redone, each model is evaluated on it.
run_sets() { "$ASRC" "${ARGS[@]}" --eval "first=$D" --eval "again=$D:test"; }
run_sets > "$T/md2" 2> "$T/sets.err"
grep -qF "4 already finished, 0 to run" "$T/sets.err" || fail "a further eval set redid configurations: $(cat "$T/sets.err")"
grep -qF "## Accuracy: again (" "$T/md2" || fail "no table for the further eval set"

/usr/bin/python3 - "$T/s" <<'PY'
import json, re, sys
d = sys.argv[1]
j = json.load(open(d + "/ablation.json"))
rows = j["rows"]
assert [r["key"] for r in rows] == ["input", "steps-1", "steps-1-2", "steps-1-2-3"], rows
assert [len(j["steps"][i]["passes"]) for i in range(3)] == [2, 1, 1]
for r in rows[1:]:
    for mode in ("streaming", "lookahead"):
        assert mode in r["measured"] and mode in r["significance"], (r["key"], mode)
        lo, hi = r["significance"][mode]["ci95"]
        assert lo <= r["significance"][mode]["delta_wer"] <= hi
assert rows[3]["bytes"] * 3 < rows[0]["bytes"], "int8 did not shrink the model"
assert rows[3]["from"] == "steps-1-2", rows[3].get("from")
assert j["eval_sets"] == ["first", "again"], j["eval_sets"]
for r in rows:
    x = r["extra"]["again"]
    assert x["eval"]["split"] == "test" and "lookahead" in x["measured"], r["key"]
    assert len(x["measured"]["lookahead"]["utt_char_errors"]) == 2
    if r["key"] != "input":
        s = x["significance"]["lookahead"]
        assert s["ci95"][0] <= s["delta_wer"] <= s["ci95"][1]
        assert s["cer"]["ci95"][0] <= s["cer"]["delta_cer"] <= s["cer"]["ci95"][1], s
        assert "cer" in r["significance"]["streaming"]  # the configuration's own set has CER CIs too
html = open(d + "/ablation.html").read()
assert html.count("<svg") == 4, html.count("<svg")
assert "<script" not in html
assert set(re.findall(r'(?:src|href)="([^"]*)"', html)) == set(), "external resources"
assert set(re.findall(r"https?://[^\"' ]+", html)) == {"http://www.w3.org/2000/svg"}
md = open(d + "/ablation.md").read()
assert "| 3 | full pipeline | prune + lowrank + int8 |" in md, md
assert "## Accuracy: first (" in md and "dCER la [95% CI] p" in md, md
PY
grep -qF "| 3 | full pipeline |" "$T/md" || fail "stdout lacks the table"

# Size and latency only (--no-wer): no accuracy tables, latency against size.
"$ASRC" "${ARGS[@]}" --no-wer > "$T/md3" 2> /dev/null
grep -qF "## Accuracy" "$T/md3" && fail "--no-wer printed accuracy tables"
grep -qF "No WER/CER (--no-wer" "$T/md3" || fail "--no-wer legend missing"
grep -qF "Latency vs size" "$T/s/ablation.html" || fail "--no-wer: no latency-vs-size plot"
echo "ablate_test: OK"
