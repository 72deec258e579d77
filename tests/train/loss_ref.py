"""Reference losses and gradients for tests/train/loss_test.cc, computed by PyTorch:
torchaudio.functional.rnnt_loss, torch.nn.functional.ctc_loss, and torch autograd on a few
lines of torch for the two transducer KL forms and the L2 hint. Usage:
  loss_ref.py OUT_DIR
writes OUT_DIR/cases.json and one raw little-endian file per array (inputs, expected loss and
expected gradient of the reduced loss w.r.t. input 0). Exit code 3: torch/torchaudio missing."""
import json
import os
import sys

try:
    import torch
    import torch.nn.functional as F
    import torchaudio.functional as AF
except ImportError as e:  # the test decides whether that is a failure (CI) or a skip
    print("loss_ref.py: %s" % e)
    sys.exit(3)

out_dir = sys.argv[1]
os.makedirs(out_dir, exist_ok=True)
gen = torch.Generator().manual_seed(1234)
cases = []


def save(case, role, t):
    t = t.detach().contiguous()
    dtype = {torch.float32: "float32", torch.int64: "int64", torch.int32: "int32"}[t.dtype]
    name = "%s.%s.bin" % (case["name"], role)
    t.numpy().tofile(os.path.join(out_dir, name))
    return {"file": name, "dtype": dtype, "shape": list(t.shape)}


def add(name, op, attrs, inputs, loss, grad, grad64=None):
    case = {"name": name, "op": op, "attrs": attrs}
    case["inputs"] = [save(case, "in%d" % i, t) for i, t in enumerate(inputs)]
    case["loss"] = save(case, "loss", loss)
    case["grad"] = save(case, "grad", grad)
    if grad64 is not None:
        case["grad64"] = save(case, "grad64", grad64.float())
    cases.append(case)


def lattice(T, U, V, tlens, ulens, blank, scale=3.0):
    B = len(tlens)
    x = (torch.randn(B, T, U + 1, V, generator=gen) * scale).requires_grad_()
    y = torch.randint(0, V - 1, (B, max(U, 1)), generator=gen)[:, :U]
    y = y + (y >= blank).long()  # labels other than blank
    return x, y, torch.tensor(tlens), torch.tensor(ulens)


# ---- RNN-T against torchaudio (fused log-softmax) ----
def rnnt_autograd64(inp, y, tl, ul, blank, fused):
    """The RNN-T recursion in float64, differentiated by torch autograd: torchaudio computes in
    float32 only (its gradient is ~4e-5 relative off the exact one on the bigger case), and it
    has no unfused mode in this version. Returns per-utterance losses and d(sum)/d(inp)."""
    x = inp.detach().double().requires_grad_()
    lp = x.log_softmax(-1) if fused else x
    losses = []
    for b in range(x.shape[0]):
        T, U = int(tl[b]), int(ul[b])
        a = {}
        for t in range(T):
            for u in range(U + 1):
                terms = [torch.zeros((), dtype=torch.float64)] if t == 0 and u == 0 else []
                if t > 0:
                    terms.append(a[t - 1, u] + lp[b, t - 1, u, blank])
                if u > 0:
                    terms.append(a[t, u - 1] + lp[b, t, u - 1, int(y[b, u - 1])])
                a[t, u] = torch.logsumexp(torch.stack(terms), 0)
        losses.append(-(a[T - 1, U] + lp[b, T - 1, U, blank]))
    losses = torch.stack(losses)
    losses.sum().backward()
    return losses, x.grad


def rnnt(name, T, U, V, tlens, ulens, blank=0, reduction="mean", idtype=torch.int64, fused=True, scale=3.0):
    x, y, tl, ul = lattice(T, U, V, tlens, ulens, blank, scale)
    inp = x if fused else x.log_softmax(-1).detach()
    loss = AF.rnnt_loss(x, y.int(), tl.int(), ul.int(), blank=blank, reduction=reduction)
    (loss.sum() if reduction == "none" else loss).backward()
    _, g64 = rnnt_autograd64(inp, y, tl, ul, blank, fused)
    if reduction == "mean":
        g64 = g64 / len(tlens)
    grad = x.grad if fused else torch.zeros(0)  # unfused: torchaudio's gradient is w.r.t. logits
    add(name, "RNNTLoss", {"blank": blank, "reduction": reduction, "fused_log_softmax": int(fused)},
        [inp, y.to(idtype), tl.to(idtype), ul.to(idtype)], loss, grad, g64)


rnnt("rnnt_uneven_mean", 6, 4, 7, [6, 3, 1, 5], [4, 0, 2, 1])
rnnt("rnnt_t1_u0_sum", 1, 0, 5, [1, 1], [0, 0], reduction="sum")
rnnt("rnnt_t1_none", 1, 3, 5, [1, 1, 1], [3, 1, 0], reduction="none", idtype=torch.int32)
rnnt("rnnt_blank_last_none", 5, 3, 6, [5, 2, 4], [2, 3, 0], blank=5, reduction="none")
rnnt("rnnt_bigger_mean", 30, 10, 40, [30, 17, 24], [10, 3, 7])
rnnt("rnnt_unfused_mean", 5, 3, 6, [5, 4], [3, 1], fused=False)
rnnt("rnnt_peaked_sum", 8, 4, 12, [8, 5], [4, 2], reduction="sum", scale=40.0)  # near-one-hot softmaxes


# ---- CTC against torch.nn.functional.ctc_loss ----
def ctc(name, T, L, V, tlens, ulens, blank=0, reduction="mean", zero_inf=False, repeat=False, fused=True):
    B = len(tlens)
    x = (torch.randn(B, T, V, generator=gen) * 3).requires_grad_()
    y = torch.randint(0, V - 1, (B, L), generator=gen)
    y = y + (y >= blank).long()
    if repeat:
        y[:, 1] = y[:, 0]  # a repeated label needs a blank between the two
    tl, ul = torch.tensor(tlens), torch.tensor(ulens)
    lp = x.log_softmax(-1)
    loss = F.ctc_loss(lp.transpose(0, 1), y, tl, ul, blank=blank, reduction=reduction, zero_infinity=zero_inf)
    (loss.sum() if reduction == "none" else loss).backward()
    inp = x if fused else lp.detach()
    grad = x.grad if fused else torch.zeros(0)
    add(name, "CTCLoss", {"blank": blank, "reduction": reduction, "zero_infinity": int(zero_inf),
                          "fused_log_softmax": int(fused)}, [inp, y, tl, ul], loss, grad)


ctc("ctc_uneven_mean", 12, 4, 6, [12, 7, 3, 9], [4, 2, 0, 3])
ctc("ctc_repeat_sum", 10, 3, 5, [10, 4], [3, 2], reduction="sum", repeat=True)
ctc("ctc_blank_last_none", 8, 3, 5, [8, 6, 1], [3, 1, 0], blank=4, reduction="none")
ctc("ctc_impossible_zero_inf", 6, 4, 5, [6, 2], [2, 4], reduction="mean", zero_inf=True)
ctc("ctc_unfused_mean", 9, 3, 6, [9, 5], [3, 2], fused=False)


# ---- Transducer KD: torch autograd on the definitions ----
def valid_mask(B, T, U1, tl, ul):
    t = torch.arange(T).view(1, T, 1)
    u = torch.arange(U1).view(1, 1, U1)
    return (t < tl.view(B, 1, 1)) & (u <= ul.view(B, 1, 1))


def reduce(per_utt, reduction):
    return {"mean": per_utt.mean(), "sum": per_utt.sum(), "none": per_utt}[reduction]


def kl_full(name, T, U, V, tlens, ulens, reduction="mean", close=False):
    """close: a teacher within 1e-2 of the student (tiny KL, as late in distillation)."""
    s, _, tl, ul = lattice(T, U, V, tlens, ulens, 0)
    t = s.detach() + torch.randn(s.shape, generator=gen) * 1e-2 if close else torch.randn(s.shape, generator=gen) * 3
    ls, lt = s.double().log_softmax(-1), t.double().log_softmax(-1)  # float64: tiny KLs stay exact
    kl = (lt.exp() * (lt - ls)).sum(-1)
    per = (kl * valid_mask(len(tlens), T, U + 1, tl, ul)).sum((1, 2))
    loss = reduce(per, reduction)
    (loss.sum() if reduction == "none" else loss).backward()
    add(name, "TransducerKLLoss", {"reduction": reduction}, [s, t, tl, ul], loss.float(), s.grad)


kl_full("kl_full_mean", 5, 3, 9, [5, 2, 1], [3, 0, 2])
kl_full("kl_full_none", 4, 2, 6, [4, 3], [1, 2], reduction="none")
kl_full("kl_full_close_sum", 4, 3, 50, [4, 2], [3, 1], reduction="sum", close=True)


def collapse_logp(x, y, ul, blank):
    """log-probabilities of (next label, blank, rest) at every node; at u = U_b the label class
    is empty (-inf)."""
    B, T, U1, V = x.shape
    k = torch.arange(V).view(1, 1, 1, V)
    u = torch.arange(U1).view(1, 1, U1, 1)
    ypad = torch.cat([y, torch.zeros(B, 1, dtype=torch.long)], 1)[:, :U1].view(B, 1, U1, 1)
    is_label = (k == ypad) & (u < ul.view(B, 1, 1, 1))
    is_blank = k == blank
    cls = [is_label, is_blank & ~is_label, ~is_label & ~is_blank]
    lz = x.logsumexp(-1)
    neg = torch.tensor(float("-inf"))
    return torch.stack([torch.where(c, x, neg).logsumexp(-1) - lz for c in cls], -1)


def kl_collapsed(name, T, U, V, tlens, ulens, blank=0, reduction="mean", three=False, close=False):
    s, y, tl, ul = lattice(T, U, V, tlens, ulens, blank)
    t = s.detach() + torch.randn(s.shape, generator=gen) * 1e-2 if close else torch.randn(s.shape, generator=gen) * 3
    lq = collapse_logp(t.double(), y, ul, blank)  # float64: tiny KLs stay exact
    lp = collapse_logp(s.double(), y, ul, blank)
    q = lq.exp()
    kl = torch.where(q > 0, q * (lq - lp), torch.zeros(())).sum(-1)
    per = (kl * valid_mask(len(tlens), T, U + 1, tl, ul)).sum((1, 2))
    loss = reduce(per, reduction)
    (loss.sum() if reduction == "none" else loss).backward()
    teacher = q.float() if three else t
    add(name, "TransducerCollapsedKLLoss", {"blank": blank, "reduction": reduction},
        [s, teacher, y, tl, ul], loss.float(), s.grad)


kl_collapsed("kl3_logits_mean", 5, 3, 8, [5, 3, 1], [3, 1, 0])
kl_collapsed("kl3_probs_sum", 6, 4, 10, [6, 2], [2, 4], blank=3, reduction="sum", three=True)
kl_collapsed("kl3_probs_none", 3, 2, 5, [3, 1], [2, 0], reduction="none", three=True)
kl_collapsed("kl3_logits_close_sum", 4, 3, 50, [4, 2], [3, 1], reduction="sum", close=True)


def l2(name, shape, lens, reduction="mean"):
    s = torch.randn(shape, generator=gen).requires_grad_()
    t = torch.randn(shape, generator=gen)
    d2 = (s - t) ** 2
    if lens is None:
        total, count = d2.sum(), d2.numel()
    else:
        lens = torch.tensor(lens)
        m = (torch.arange(shape[1]).view(1, -1) < lens.view(-1, 1)).float()
        m = m.view(list(m.shape) + [1] * (len(shape) - 2))
        total, count = (d2 * m).sum(), (m.expand(shape)).sum()
    loss = total / count if reduction == "mean" else total
    loss.backward()
    add(name, "L2HintLoss", {"reduction": reduction}, [s, t] + ([lens] if lens is not None else []), loss, s.grad)


l2("l2_masked_mean", (3, 7, 5), [7, 2, 4])
l2("l2_plain_sum", (4, 6), None, reduction="sum")

json.dump(cases, open(os.path.join(out_dir, "cases.json"), "w"), indent=1)
print("%d cases" % len(cases))
