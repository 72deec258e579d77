#!/bin/bash
# Data-parallel training, measured (issue 12, "Scale-out"): the demo teacher bundle fine-tuned with
# the RNN-T loss on one batch of the first 16 cathy train utterances (one length bucket, so every
# step trains on the same batch), as
#   1x1  one process, 1 thread          asrc train --threads 1 --batch-frames 2C
#   1x2  one process, 2 threads         asrc train --threads 2 --batch-frames 2C
#   2x1  two ranks of 1 thread each     mpirun -np 2 asrc train --threads 1 --batch-frames C
# (C = 3200 frames per rank; the 16 utterances, at most 378 frames each, fit one bucket of 2C).
# Each line of the trainer's progress (--log-every 1) is timestamped: step 1 is cold (composing and
# planning the graphs of the batch's shapes), the median of the later steps is the warm step time.
# Peak RSS: GNU time's %M (for mpirun: the largest of its child processes, i.e. one rank).
# Prints a markdown table; the logs stay in OUT.
#   [BUILD=build] [STEPS=4] [OUT=/tmp/mpi_bench] [MANIFEST=cathy manifest] experiments/train/mpi_bench.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD:-build} steps=${STEPS:-4} out=${OUT:-/tmp/mpi_bench}
manifest=${MANIFEST:-/work/shared/data/cathy/manifest.jsonl}
command -v mpirun >/dev/null || { echo "mpi_bench.sh: no mpirun (Debian openmpi-bin)" >&2; exit 1; }
mkdir -p "$out"
asrc="$build/apps/asrc/asrc"
mpirun="mpirun --allow-run-as-root --oversubscribe --bind-to none --mca btl self,vader --mca btl_vader_single_copy_mechanism none"
common="train --model experiments/teacher/bundle --data $manifest --split train --limit 16 --loss rnnt
        --lr 1e-4 --warmup 0 --steps $steps --log-every 1 --seed 1"

# run NAME COMMAND...: timestamps every output line into OUT/NAME.log, peak RSS into OUT/NAME.rss.
run() {
  local name=$1
  shift
  rm -rf "${out:?}/$name"
  echo "$(date +%s.%N) start load $(cut -d' ' -f1-3 /proc/loadavg)" > "$out/$name.log"
  /usr/bin/time -f "%M" -o "$out/$name.rss" "$@" --out "$out/$name" 2>&1 |
    while IFS= read -r line; do echo "$(date +%s.%N) $line"; done >> "$out/$name.log"
  echo "$(date +%s.%N) end load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/$name.log"
}

# shellcheck disable=SC2086
run 1x1 "$asrc" $common --threads 1 --batch-frames 6400
# shellcheck disable=SC2086
run 1x2 "$asrc" $common --threads 2 --batch-frames 6400
# shellcheck disable=SC2086
run 2x1 $mpirun -np 2 "$asrc" $common --threads 1 --batch-frames 3200

echo "| ranks x threads | cold step 1 s | warm step s (median of $((steps - 1))) | total s | peak RSS MiB per process | final loss/token | load avg before -> after |"
echo "|---|---|---|---|---|---|---|"
for name in 1x1 1x2 2x1; do
  /usr/bin/python3 - "$out/$name.log" "$out/$name.rss" "$name" <<'EOF'
import re, statistics, sys
log, rss, name = sys.argv[1:4]
lines = [l.rstrip("\n").split(" ", 1) for l in open(log)]
start, end = float(lines[0][0]), float(lines[-1][0])
steps = [(float(t), m) for t, m in lines if re.match(r"distill: step \d+/\d+ ", m)]
times = [b[0] - a[0] for a, b in zip([(start, "")] + steps[:-1], steps)]
loss = re.search(r"loss/token ([0-9.]+)", steps[-1][1]).group(1)
load0 = lines[0][1].split("load ")[1]
load1 = lines[-1][1].split("load ")[1]
peak = int(open(rss).read().split()[-1]) / 1024
print(f"| {name} | {times[0]:.1f} | {statistics.median(times[1:]):.2f} | {end - start:.1f} | {peak:.0f} | {loss} | {load0} -> {load1} |")
EOF
done
