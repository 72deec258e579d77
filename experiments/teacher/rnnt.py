"""RNN-T loss in plain PyTorch ops (same value and gradients as torchaudio.functional.rnnt_loss with
fused log-softmax, blank=0, reduction='sum'), much faster on CPU than torchaudio's CPU kernel.

Forward variable per row t: alpha[t, u] = logaddexp(alpha[t-1, u] + blank[t-1, u],
alpha[t, u-1] + label[t, u-1]); the in-row recursion is solved in closed form with a cumulative sum
of label log-probs and logcumsumexp, so the Python loop runs over T only."""
import torch


def rnnt_loss(logits, targets, logit_lengths, target_lengths, blank=0, reduction="sum"):
    # logits [N, T, U+1, V]; targets [N, U]; lengths [N]
    N, T, U1, V = logits.shape
    lse = torch.logsumexp(logits, dim=-1)  # [N, T, U1]
    blank_lp = logits[..., blank] - lse  # [N, T, U1]
    tg = targets.long().clamp(min=0)
    if U1 > 1:
        lab = torch.gather(logits[:, :, :U1 - 1], 3, tg[:, None, :U1 - 1, None].expand(N, T, U1 - 1, 1)).squeeze(3)
        label_lp = lab - lse[:, :, :U1 - 1]  # [N, T, U]
    else:
        label_lp = logits.new_zeros(N, T, 0)
    zero = logits.new_zeros(N, T, 1)
    c = torch.cat([zero, torch.cumsum(label_lp, dim=2)], dim=2)  # [N, T, U1], c[t, u] = sum_{j<u} label[t, j]
    neg_inf = torch.finfo(logits.dtype).min / 4
    rows = []
    # t = 0: alpha[0, u] = c[0, u]
    a = c[:, 0]
    rows.append(a)
    for t in range(1, T):
        prev = a + blank_lp[:, t - 1]  # arriving from (t-1, u) by blank
        ct = c[:, t]
        a = ct + torch.logcumsumexp(prev - ct, dim=1)
        rows.append(a)
    alpha = torch.stack(rows, dim=1)  # [N, T, U1]
    tl = logit_lengths.long() - 1
    ul = target_lengths.long()
    idx = torch.arange(N)
    ll = alpha[idx, tl, ul] + blank_lp[idx, tl, ul]
    loss = -ll
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    return loss


if __name__ == "__main__":
    # self-test against torchaudio: /usr/bin/python3 experiments/teacher/rnnt.py
    import torchaudio
    torch.manual_seed(0)
    N, T, U, V = 4, 30, 7, 20
    lg = torch.randn(N, T, U + 1, V, requires_grad=True)
    tg = torch.randint(1, V, (N, U)).int()
    tl = torch.tensor([30, 25, 17, 30]).int()
    ul = torch.tensor([7, 5, 3, 0]).int()
    a = torchaudio.functional.rnnt_loss(lg, tg, tl, ul, blank=0, reduction="none")
    b = rnnt_loss(lg, tg, tl, ul, blank=0, reduction="none")
    ga, = torch.autograd.grad(a.sum(), lg)
    gb, = torch.autograd.grad(b.sum(), lg)
    print("loss max abs diff %.2e, grad max abs diff %.2e" % ((a - b).abs().max(), (ga - gb).abs().max()))
    assert torch.allclose(a, b, atol=1e-3) and torch.allclose(ga, gb, atol=1e-4)
    print("OK")
