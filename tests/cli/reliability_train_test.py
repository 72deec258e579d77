#!/usr/bin/env python3
"""Reliability checks (issue 17) for the commands that grew after reliability_test.py: `asrc train`
(flags, --out, manifests, corrupt checkpoints for --resume), the distill pass's pipeline options,
`asrc ablate` (flags, --out, its evaluation cache, a study interrupted by a signal), `eval-merge`
onto the shards' own manifest, and `transcribe --lookahead-segment`.

The same rules as reliability_test.py (whose helpers it uses): every bad case exits non-zero
without a crash, prints one `asrc:` line naming the culprit and leaves its folder as it was.
Training runs on the demo teacher with two or three short utterances of the default eval set, so
each case takes a few seconds. Usage: reliability_train_test.py ASRC_BIN REPO_ROOT
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reliability_test as rt  # noqa: E402  (reads ASRC_BIN and REPO_ROOT from sys.argv too)

ASRC, ROOT, BUNDLE = rt.ASRC, rt.ROOT, rt.BUNDLE
PIPELINES = os.path.join(ROOT, "experiments/pipelines")


def write_rows(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return path


def demo_rows(n, split="train"):
    """The first n lines of the default eval set with absolute audio paths, in `split`."""
    rows = []
    with open(os.path.join(rt.DATA, "manifest.jsonl")) as f:
        for line in list(f)[:n]:
            r = json.loads(line)
            r["audio_filepath"] = os.path.join(rt.DATA, r["audio_filepath"])
            r["split"] = split
            rows.append(r)
    return rows


def ok(name, args, must_say=None):
    """expect_ok that says whether it passed."""
    before = len(rt.failures)
    rt.expect_ok(name, args, must_say)
    return len(rt.failures) == before


def train_args(data, out, *extra, model=BUNDLE, steps="2"):
    return ["train", "--model", model, "--data", data, "--split", "train", "--out", out, "--steps", steps,
            "--log-every", "1"] + list(extra)


def train_cases(t):
    data = write_rows(os.path.join(t, "train.jsonl"), demo_rows(2))
    out = os.path.join(t, "run")
    for flag, value in [("--lr", "nan"), ("--lr", "-1"), ("--batch-frames", "0"), ("--eval-every", "-1"),
                        ("--alpha", "2"), ("--warmup", "-1"), ("--checkpoint-every", "-1"), ("--clip", "inf")]:
        rt.expect_fail(f"train {flag} {value}", train_args(data, out, flag, value), flag, t)
    # Flags the bundle trainer does not use: refused, not silently ignored.
    for flag, value in [("--min-lr", "0.001"), ("--schedule", "constant"), ("--trainable", "enc.*"),
                        ("--tokens", os.path.join(BUNDLE, "tokens.txt"))]:
        rt.expect_fail(f"train a bundle with {flag}", train_args(data, out, flag, value), flag, t)
    # --out over an input (a copy of the bundle, so that a write into it would show).
    bundle = os.path.join(t, "bundle")
    shutil.copytree(BUNDLE, bundle)
    for name, o in [("the model folder", bundle), ("inside the model folder", os.path.join(bundle, "run")),
                    ("the folder holding the manifest", t), ("the manifest", data), ("''", "")]:
        rt.expect_fail(f"train --out {name}", train_args(data, o, model=bundle), "--out", t)
    # OUT/best and OUT/last are saved over at the end: a folder there with the user's files is refused.
    mine = os.path.join(t, "mine")
    os.makedirs(os.path.join(mine, "best"))
    open(os.path.join(mine, "best", "notes.txt"), "w").write("mine\n")
    rt.expect_fail("train --out whose best/ holds the user's files", train_args(data, mine), "notes.txt", t)
    shutil.rmtree(mine)
    # A full disk at the checkpoint: an error naming it, and no checkpoint.ckpt.tmp left behind.
    full = os.path.join(t, "full")
    rc, _, err = rt.run(train_args(data, full, steps="1"), preexec=rt.small_disk(1 << 20))
    left = sorted(os.listdir(full)) if os.path.isdir(full) else []
    ok_full = rc is not None and 0 < rc < 128 and "checkpoint" in err and not any(f.endswith(".tmp") for f in left)
    print(f"train on a full disk: {'ok' if ok_full else f'FAIL: exit {rc}, left {left}'}\n    {err.strip()[-200:]}")
    if not ok_full:
        rt.failures.append("train on a full disk")
    shutil.rmtree(full, ignore_errors=True)
    # Bad training data: an error before the first step, and no OUT left behind.
    bad = [("no utterance in the split", [dict(r, split="dev") for r in demo_rows(2)], "split 'train'"),
           ("token id out of the vocabulary", [dict(r, token_ids=[5, 99999]) for r in demo_rows(2)], "99999"),
           ("missing audio", [dict(demo_rows(2)[0], audio_filepath=os.path.join(t, "gone.flac")), demo_rows(2)[1]],
            "gone.flac")]
    for name, rows, culprit in bad:
        m = write_rows(os.path.join(t, "bad.jsonl"), rows)
        rt.expect_fail(f"train data: {name}", train_args(m, out), culprit, t)
        os.remove(m)
    # The distill pass in a pipeline: option types, unknown keys, and a checkpoint path that is
    # the training manifest (it was replaced by the checkpoint).
    for name, opts, culprit in [("a string for steps", {"data": data, "steps": "2"}, "options.steps"),
                                ("an unknown key", {"data": data, "stepz": 2}, "options.stepz"),
                                ("checkpoint = the data manifest", {"data": data, "steps": 1, "checkpoint": data},
                                 "checkpoint"),
                                ("checkpoint = a folder", {"data": data, "steps": 1, "checkpoint": t}, "folder")]:
        p = os.path.join(t, "distill.json")
        json.dump({"name": "d", "passes": [{"pass": "distill", "options": opts}]}, open(p, "w"))
        rt.expect_fail(f"compress distill: {name}",
                       ["compress", "--pipeline", p, "--no-eval", "--quiet", "--out", os.path.join(t, "c")], culprit, t)
        os.remove(p)


def checkpoint_variants(ck):
    """(name, bytes, culprit) of damaged copies of checkpoint file contents `ck`."""
    n = int.from_bytes(ck[8:16], "little")
    header, data = json.loads(ck[16:16 + n]), ck[16 + n:]

    def with_header(edit):
        h = json.loads(json.dumps(header))
        edit(h)
        text = json.dumps(h).encode()
        return ck[:8] + len(text).to_bytes(8, "little") + text + data
    flipped = bytearray(ck)
    for i in range(16 + n + 100, 16 + n + 108):  # inside the first tensor: zeros, finite but wrong
        flipped[i] = 0
    rename = header["tensors"][0]["name"]
    return [
        ("truncated", ck[:len(ck) // 2], "truncated"),
        ("empty", b"", "not an asrc checkpoint"),
        ("bytes changed", bytes(flipped), "hash"),
        ("a negative step", with_header(lambda h: h.update(step=-5)), "'step'"),
        ("best_index out of range", with_header(lambda h: h.update(best_index=99)), "best_index"),  # SIGSEGV before
        ("dev scores not a list", with_header(lambda h: h.update(dev="x")), "bad header"),  # abort before
        ("another model's tensor", with_header(lambda h: h["tensors"][0].update(name="other/" + rename)),
         "not a trainable here"),
    ]


def resume_cases(t):
    data = write_rows(os.path.join(t, "train.jsonl"), demo_rows(2))
    base = os.path.join(t, "base")
    if not ok("train one step (the checkpoint for --resume)", train_args(data, base, steps="1")):
        return
    ck = open(os.path.join(base, "checkpoint.ckpt"), "rb").read()
    case = os.path.join(t, "case")
    os.makedirs(case)
    for name, content, culprit in checkpoint_variants(ck):
        with open(os.path.join(case, "checkpoint.ckpt"), "wb") as f:
            f.write(content)
        rt.expect_fail(f"train --resume from a checkpoint: {name}", train_args(data, case, "--resume"), culprit, case)


def ablate_args(out, *extra, pipeline="int8-weight-only.json"):
    return ["ablate", "--pipeline", os.path.join(PIPELINES, pipeline), "--out", out, "--mode", "alone", "--quiet",
            "--eval-repeat", "1"] + list(extra)


def partial_names(folder):
    return [os.path.join(d, f) for d, dirs, files in os.walk(folder) for f in dirs + files if "partial" in f]


def ablate_cases(t):
    m = write_rows(os.path.join(t, "eval.jsonl"), demo_rows(3, "test"))
    out = os.path.join(t, "study")
    for flag, value in [("--stable", "nan"), ("--threads", "-2"), ("--eval-limit", "-5"), ("--jobs", "0")]:
        rt.expect_fail(f"ablate {flag} {value}", ablate_args(out, "--eval", m, flag, value), flag, t)
    rt.expect_fail("ablate --out holding the eval manifest", ablate_args(t, "--eval", m), "--out", t)
    rt.expect_fail("ablate --out = the pipeline",
                   ablate_args(os.path.join(PIPELINES, "int8-weight-only.json"), "--no-eval"), "--out", t)
    rt.expect_fail("ablate --eval NAME=missing", ablate_args(out, "--eval", "a=" + m, "--eval", "b=" + t + "/no.jsonl"),
                   "no.jsonl", t)
    rt.expect_fail("ablate --eval with an empty NAME", ablate_args(out, "--eval", "=" + m), "set name", t)
    rt.expect_fail("ablate --eval NAME twice", ablate_args(out, "--eval", "a=" + m, "--eval", "a=" + m), "twice", t)
    # stdout on a full disk: the study's files are written, the table on stdout is lost: an error.
    rc, _, err = rt.run(ablate_args(os.path.join(t, "full"), "--no-eval"), stdout=open("/dev/full", "w"))
    lost = rc is not None and 0 < rc < 128 and "asrc: cannot write to standard output" in err
    print(f"ablate with stdout on a full disk: {'ok' if lost else 'FAIL: exit ' + str(rc)}")
    if not lost:
        rt.failures.append("ablate stdout full")
    # The evaluation cache: a re-run into the same --out on other utterances measures them.
    counts = []
    for limit in ("1", "2"):
        if not ok(f"ablate --eval-limit {limit}", ablate_args(out, "--eval", m, "--eval-limit", limit)):
            return
        rows = json.load(open(os.path.join(out, "ablation.json")))["rows"]
        counts.append([r["measured"]["lookahead"]["utterances"] for r in rows])
    same = len(counts) == 2 and all(c == 1 for c in counts[0]) and all(c == 2 for c in counts[1])
    print(f"ablate re-run on another eval limit measures it: {'ok' if same else 'FAIL'} (utterances {counts})")
    if not same:
        rt.failures.append("ablate eval cache")
    # SIGINT to the parent alone (its workers die with it): nothing partial is left, a re-run finishes.
    study = os.path.join(t, "int")
    for delay in [0.4 * k for k in range(1, 9)]:
        p = subprocess.Popen([ASRC] + ablate_args(study, "--eval", m, "--no-wer", pipeline="ablate-demo.json"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        p.wait(timeout=60)
        for _ in range(50):  # the workers clean up after the parent is gone
            if not partial_names(study):
                break
            time.sleep(0.1)
        left = partial_names(study)
        if left:
            print(f"ablate SIGINT after {delay:.1f}s: FAIL: left {left[:3]}")
            rt.failures.append(f"ablate SIGINT after {delay:.1f}s")
    rt.expect_ok("ablate re-run after the interrupts",
                 ablate_args(study, "--eval", m, "--no-wer", pipeline="ablate-demo.json"))
    if partial_names(study):
        print(f"ablate re-run: FAIL: partial left {partial_names(study)[:3]}")
        rt.failures.append("ablate re-run leaves partial")


def merge_and_lookahead_cases(t):
    m = write_rows(os.path.join(t, "m.jsonl"), demo_rows(2, "test"))
    parts = []
    for i in range(2):
        p = os.path.join(t, f"p{i}.json")
        rt.expect_ok(f"eval shard {i}/2", rt.eval_args(m, "--shard", f"{i}/2", "--json", p))
        parts.append(p)
    rt.expect_fail("eval-merge --json onto the shards' manifest", ["eval-merge"] + parts + ["--json", m], "manifest", t)
    for value in ("0.001", "0.5"):
        rt.expect_fail(f"transcribe --lookahead-segment {value}",
                       ["transcribe", BUNDLE, rt.FLAC, "--lookahead-segment", value], "--lookahead-segment", t)


def single_encoder_cases(t):
    """A bundle with one full-context encoder (the sherpa-onnx export of the tar-decoder student):
    audio longer than one look-ahead segment is encoded in segments of feature frames (memory
    bounded by the window instead of growing with the square of the length), as many segments as
    the length needs; up to one segment it runs whole, as with --lookahead-segment 0. An encoder
    whose output length does not follow model.json's subsampling_factor cannot be segmented: a
    clear error that names --lookahead-segment 0, which still encodes it whole."""
    student, single = os.path.join(t, "tar"), os.path.join(t, "single")
    if not ok("compress tar-decoder", ["compress", "--pipeline", os.path.join(PIPELINES, "tar-decoder.json"),
                                       "--no-eval", "--quiet", "--out", student]):
        return
    if not ok("export the single-encoder bundle",
              ["export", "--format", "sherpa-onnx", os.path.join(student, "model"), single]):
        return
    wav = os.path.join(t, "long.wav")
    rt.write_float_wav(wav, [0.0] * (16000 * 45))

    def segments(name, args, want):
        rc, out, err = rt.run(["transcribe", single, wav, "--timing"] + args)
        got = [l for l in err.splitlines() if "look-ahead segments" in l]
        n = int(got[0].rsplit(",", 1)[1].split()[0]) if got else None
        good = rc == 0 and n == want and out.startswith(wav + "\t")
        print(f"{name}: {'ok' if good else f'FAIL: exit {rc}, {n} segments (want {want})'}")
        if not good:
            print("   ", err.strip()[:300])
            rt.failures.append(name)
        return out

    segments("transcribe 45 s on a single-encoder bundle: 2 segments of 40 s at most", [], 2)
    segments("the same with --lookahead-segment 10: 5 segments", ["--lookahead-segment", "10"], 5)
    whole = segments("the same with --lookahead-segment 0: whole", ["--lookahead-segment", "0"], 1)
    one = segments("the same with --lookahead-segment 50: one segment", ["--lookahead-segment", "50"], 1)
    if whole != one:
        print("FAIL: one segment differs from the whole-recording transcript")
        rt.failures.append("single-encoder one segment == whole")
    # model.json says the encoder subsamples by 2; it subsamples by 4: the mapping is refused.
    wrong = os.path.join(t, "single_wrong")
    shutil.copytree(single, wrong)
    cfg_path = os.path.join(wrong, "model.json")
    cfg = json.load(open(cfg_path))
    cfg["decoding"]["subsampling_factor"] = 2
    json.dump(cfg, open(cfg_path, "w"))
    rt.expect_fail("transcribe 45 s, encoder not subsampling as model.json says",
                   ["transcribe", wrong, wav], "--lookahead-segment 0", t)
    ok("the same with --lookahead-segment 0", ["transcribe", wrong, wav, "--lookahead-segment", "0"])


def main():
    return rt.run_suite((train_cases, resume_cases, ablate_cases, merge_and_lookahead_cases, single_encoder_cases),
                        "reliability (train, ablate, eval-merge) ok")


if __name__ == "__main__":
    sys.exit(main())
