#!/usr/bin/python3
"""Loss curves of `asrc train` (its stderr with --log-every 1, or its OUT/train_log.jsonl) and of
loss_curve.py train (its stdout) side by side: a markdown table (stdout; --every N: every Nth
step, plus the largest relative difference over all steps) and an SVG (--svg FILE).
  python3 experiments/train/compare_curves.py ASRC_STDERR|TRAIN_LOG TORCH_JSONL [--every N] [--svg FILE]"""
import json
import re
import sys


def read(asrc_path, torch_path):
    a = {}
    pat = re.compile(r"(?:distill|train): step (\d+)/\d+ loss/token ([0-9.naife+-]+) lr ([0-9.e+-]+) grad ([0-9.naife+-]+)")
    for line in open(asrc_path):
        if line.startswith("{"):  # train_log.jsonl: a step line (dev lines have no "loss")
            r = json.loads(line)
            if "loss" in r:
                a[r["step"]] = (r["loss"], r["lr"], r["grad_norm"])
            continue
        m = pat.search(line)
        if m:
            a[int(m.group(1))] = (float(m.group(2)), float(m.group(3)), float(m.group(4)))
    t = {}
    for line in open(torch_path):
        if line.startswith("{"):
            r = json.loads(line)
            t[r["step"]] = (r["loss"], r["lr"], r["grad_norm"])
    return a, t


def svg(a, t, path):
    steps = sorted(set(a) & set(t))
    ys = [a[s][0] for s in steps] + [t[s][0] for s in steps]
    W, H, P = 640, 360, 50
    lo, hi = min(ys), max(ys)
    X = lambda s: P + (W - 2 * P) * (s - steps[0]) / max(1, steps[-1] - steps[0])  # noqa: E731
    Y = lambda v: H - P - (H - 2 * P) * (v - lo) / max(hi - lo, 1e-9)  # noqa: E731
    def line(d, color):
        pts = " ".join("%.1f,%.1f" % (X(s), Y(d[s][0])) for s in steps)
        return '<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (color, pts)
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">' % (W, H),
           '<rect width="100%" height="100%" fill="white"/>',
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (P, H - P, W - P, H - P),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (P, P, P, H - P),
           '<text x="%d" y="%d" text-anchor="middle">step</text>' % (W // 2, H - 10),
           '<text x="12" y="%d" transform="rotate(-90 12 %d)" text-anchor="middle">RNN-T loss / token (both passes)</text>' % (H // 2, H // 2)]
    for v in (lo, (lo + hi) / 2, hi):
        out.append('<text x="%d" y="%.1f" text-anchor="end">%.2f</text>' % (P - 4, Y(v) + 4, v))
    for s in (steps[0], steps[len(steps) // 2], steps[-1]):
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' % (X(s), H - P + 16, s))
    out += [line(t, "#d62728"), line(a, "#1f77b4"),
            '<text x="%d" y="%d" fill="#1f77b4">asrc train</text>' % (W - P - 150, P),
            '<text x="%d" y="%d" fill="#d62728">PyTorch recipe</text>' % (W - P - 150, P + 16), "</svg>"]
    open(path, "w").write("\n".join(out) + "\n")


def main():
    a, t = read(sys.argv[1], sys.argv[2])
    steps = sorted(set(a) & set(t))
    print("| step | asrc loss/token | PyTorch loss/token | (asrc - PyTorch) / PyTorch | asrc grad norm | PyTorch grad norm | lr (asrc / PyTorch) |")
    print("|---|---|---|---|---|---|---|")
    every = int(sys.argv[sys.argv.index("--every") + 1]) if "--every" in sys.argv else 1
    rel = {s: abs(a[s][0] - t[s][0]) / t[s][0] for s in steps}
    worst = max(steps, key=lambda s: rel[s])
    for s in steps:
        if s % every and s not in (1, worst):
            continue
        print("| %d | %.4f | %.4f | %+.1e | %.3f | %.3f | %.2e / %.2e |" % (
            s, a[s][0], t[s][0], (a[s][0] - t[s][0]) / t[s][0], a[s][2], t[s][2], a[s][1], t[s][1]))
    print("\n%d steps compared; largest |asrc - PyTorch| / PyTorch: %.1e at step %d (%.5f vs %.5f)" % (
        len(steps), rel[worst], worst, a[worst][0], t[worst][0]))
    if "--svg" in sys.argv:
        svg(a, t, sys.argv[sys.argv.index("--svg") + 1])


if __name__ == "__main__":
    main()
