"""Cascaded two-pass transducer (causal streaming conformer + non-causal look-ahead conformer,
one LSTM prediction network, one joiner shared by both passes).

Causal encoder streaming semantics (docs/bundle.md, "streaming"):
  features [T, 80] are padded at the end with PAD_VALUE to n*chunk + 3 frames (n = ceil(T/chunk));
  conv subsampling (two Conv2d k=3 s=2, no padding) maps a window of chunk+3 frames to chunk/4
  outputs, and the whole padded sequence to n*chunk/4 outputs with no cross-chunk state;
  conformer layers attend to their own chunk (chunk/4 subsampled frames) and up to `left_context`
  subsampled frames on the left; depthwise convolutions are causal.  `forward` (whole utterance,
  chunk masks) and `forward_chunk` (one chunk + caches) compute the same function.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

PAD_VALUE = math.log(1e-10)  # -23.025850929940457
# Real Kaldi fbank values are >= log(FLT_EPSILON) = -15.9; frames at PAD_VALUE are end padding and
# are mapped to 0 (the global mean) after normalization, so they are not 10-sigma outliers.
PAD_THRESHOLD = -20.0
SUBSAMPLING = 4
RIGHT_CONTEXT = 3


class Conv2dSubsampling(nn.Module):
    def __init__(self, idim, channels, d):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, stride=2)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=2)
        f = ((idim - 3) // 2 + 1 - 3) // 2 + 1
        self.out = nn.Linear(channels * f, d)
        self.norm = nn.LayerNorm(d)

    def forward(self, x):  # [N, T, F] -> [N, (T-3)//4, d]
        x = x.unsqueeze(1)
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        n, c, t, f = x.shape
        x = x.permute(0, 2, 1, 3).reshape(n, t, c * f)
        return self.norm(self.out(x))


class FeedForward(nn.Module):
    def __init__(self, d, ff, dropout):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.l1 = nn.Linear(d, ff)
        self.l2 = nn.Linear(ff, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        x = self.norm(x)
        x = self.l1(x)
        x = x * torch.sigmoid(x)
        return self.l2(self.drop(x))


class ConvModule(nn.Module):
    """Pointwise(GLU) -> depthwise conv (causal: left context only) -> LayerNorm -> SiLU -> pointwise."""

    def __init__(self, d, kernel, causal):
        super().__init__()
        self.causal = causal
        self.kernel = kernel
        self.norm = nn.LayerNorm(d)
        self.pw1 = nn.Linear(d, 2 * d)
        self.dw = nn.Conv1d(d, d, kernel, groups=d)
        self.norm2 = nn.LayerNorm(d)
        self.pw2 = nn.Linear(d, d)

    def _pre(self, x, mask):
        x = self.norm(x)
        x = self.pw1(x)
        x = x[..., : x.shape[-1] // 2] * torch.sigmoid(x[..., x.shape[-1] // 2:])
        if mask is not None:
            x = x * mask.unsqueeze(-1).to(x.dtype)
        return x.transpose(1, 2)  # [N, d, T]

    def _post(self, x):
        x = x.transpose(1, 2)
        x = self.norm2(x)
        x = x * torch.sigmoid(x)
        return self.pw2(x)

    def forward(self, x, mask=None):
        x = self._pre(x, mask)
        if self.causal:
            x = F.pad(x, (self.kernel - 1, 0))
        else:
            x = F.pad(x, ((self.kernel - 1) // 2, (self.kernel - 1) // 2))
        return self._post(self.dw(x))

    def forward_chunk(self, x, cache):  # cache [N, d, K-1]
        x = self._pre(x, None)
        x = torch.cat([cache, x], dim=2)
        new_cache = x[:, :, x.shape[2] - (self.kernel - 1):]
        return self._post(self.dw(x)), new_cache


class SelfAttention(nn.Module):
    def __init__(self, d, heads, dropout):
        super().__init__()
        self.h = heads
        self.dk = d // heads
        self.norm = nn.LayerNorm(d)
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.o = nn.Linear(d, d)
        self.drop = nn.Dropout(dropout)

    def _attend(self, q, k, v, allowed):
        # q [N, Tq, d], k/v [N, Tk, d], allowed: bool broadcastable to [N, 1, Tq, Tk]
        n, tq, d = q.shape
        tk = k.shape[1]
        q = q.reshape(n, tq, self.h, self.dk).transpose(1, 2)
        k = k.reshape(n, tk, self.h, self.dk).transpose(1, 2)
        v = v.reshape(n, tk, self.h, self.dk).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(2, 3)) * (1.0 / math.sqrt(self.dk))
        scores = scores.masked_fill(~allowed, -1e9)
        att = torch.softmax(scores, dim=-1)
        out = torch.matmul(self.drop(att), v)
        out = out.transpose(1, 2).reshape(n, tq, d)
        return self.o(out)

    def forward(self, x, allowed):
        x = self.norm(x)
        return self._attend(self.q(x), self.k(x), self.v(x), allowed)

    def forward_chunk(self, x, cache_k, cache_v, allowed):
        # cache_k/v [N, L, d]: projected keys/values of the last L frames
        x = self.norm(x)
        k = torch.cat([cache_k, self.k(x)], dim=1)
        v = torch.cat([cache_v, self.v(x)], dim=1)
        out = self._attend(self.q(x), k, v, allowed)
        L = cache_k.shape[1]
        return out, k[:, k.shape[1] - L:], v[:, v.shape[1] - L:]


class ConformerLayer(nn.Module):
    def __init__(self, d, heads, ff, kernel, dropout, causal):
        super().__init__()
        self.ff1 = FeedForward(d, ff, dropout)
        self.att = SelfAttention(d, heads, dropout)
        self.conv = ConvModule(d, kernel, causal)
        self.ff2 = FeedForward(d, ff, dropout)
        self.norm = nn.LayerNorm(d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, allowed, mask=None):
        x = x + 0.5 * self.drop(self.ff1(x))
        x = x + self.drop(self.att(x, allowed))
        x = x + self.drop(self.conv(x, mask))
        x = x + 0.5 * self.drop(self.ff2(x))
        return self.norm(x)

    def forward_chunk(self, x, cache_k, cache_v, cache_conv, allowed):
        x = x + 0.5 * self.ff1(x)
        a, nk, nv = self.att.forward_chunk(x, cache_k, cache_v, allowed)
        x = x + a
        c, nc = self.conv.forward_chunk(x, cache_conv)
        x = x + c
        x = x + 0.5 * self.ff2(x)
        return self.norm(x), nk, nv, nc


class CausalEncoder(nn.Module):
    def __init__(self, idim=80, d=144, heads=4, ff=576, layers=8, kernel=15, sub_channels=64,
                 chunk_frames=32, left_context=64, dropout=0.1):
        super().__init__()
        assert chunk_frames % SUBSAMPLING == 0
        self.d = d
        self.kernel = kernel
        self.chunk_frames = chunk_frames
        self.chunk = chunk_frames // SUBSAMPLING  # subsampled frames per chunk
        self.left_context = left_context
        self.num_layers = layers
        self.register_buffer("feat_mean", torch.zeros(idim))
        self.register_buffer("feat_istd", torch.ones(idim))
        self.sub = Conv2dSubsampling(idim, sub_channels, d)
        self.layers = nn.ModuleList(
            [ConformerLayer(d, heads, ff, kernel, dropout, causal=True) for _ in range(layers)])

    def pad_features(self, feats, lens):
        """feats [N, T, F] (any padding) -> [N, n_max*chunk + 3, F] padded with PAD_VALUE past each length."""
        n, t, f = feats.shape
        nchunks = (int(lens.max()) + self.chunk_frames - 1) // self.chunk_frames
        total = nchunks * self.chunk_frames + RIGHT_CONTEXT
        out = feats.new_full((n, total, f), PAD_VALUE)
        tt = min(t, total)
        valid = (torch.arange(tt)[None, :] < lens[:, None]).unsqueeze(-1)
        out[:, :tt] = torch.where(valid, feats[:, :tt], out[:, :tt])
        return out

    def normalize(self, x):
        y = (x - self.feat_mean) * self.feat_istd
        return torch.where(x > PAD_THRESHOLD, y, torch.zeros_like(y))

    def chunk_mask(self, t):
        i = torch.arange(t)[:, None]
        j = torch.arange(t)[None, :]
        ci = i // self.chunk
        return (j // self.chunk <= ci) & (j >= ci * self.chunk - self.left_context)

    def forward(self, feats, lens, specaug=None):
        """Whole-utterance forward with chunk masks. feats [N, T, 80] raw fbank, lens [N].
        Returns encoder_out [N, ceil(T_max/4) rounded up to chunks, d] and out_lens = ceil(lens/4)."""
        x = self.normalize(self.pad_features(feats, lens))
        if specaug is not None:
            x = specaug(x, lens)
        x = self.sub(x)
        allowed = self.chunk_mask(x.shape[1]).to(x.device)[None, None]
        for layer in self.layers:
            x = layer(x, allowed)
        out_lens = (lens + SUBSAMPLING - 1) // SUBSAMPLING
        return x, out_lens

    def init_cache(self, n=1):
        L, d, K = self.left_context, self.d, self.kernel
        return [torch.zeros(self.num_layers, n, L, d), torch.zeros(self.num_layers, n, L, d),
                torch.zeros(self.num_layers, n, d, K - 1), torch.zeros(1, dtype=torch.int64)]

    def forward_chunk(self, x, cache_k, cache_v, cache_conv, offset):
        """x [N, chunk_frames + 3, 80] raw fbank; caches as init_cache(); offset [1] int64 =
        number of subsampled frames already processed."""
        x = self.normalize(x)
        x = self.sub(x)  # [N, chunk, d]
        L = self.left_context
        pos = torch.arange(L, dtype=torch.int64)
        valid = pos >= (L - offset)
        allowed = torch.cat([valid, torch.ones(x.shape[1], dtype=torch.bool)])[None, None, None, :]
        nks, nvs, ncs = [], [], []
        for i, layer in enumerate(self.layers):
            x, nk, nv, nc = layer.forward_chunk(x, cache_k[i], cache_v[i], cache_conv[i], allowed)
            nks.append(nk)
            nvs.append(nv)
            ncs.append(nc)
        return x, torch.stack(nks), torch.stack(nvs), torch.stack(ncs), offset + x.shape[1]


class NonCausalEncoder(nn.Module):
    def __init__(self, d=144, heads=4, ff=576, layers=2, kernel=15, dropout=0.1):
        super().__init__()
        self.layers = nn.ModuleList(
            [ConformerLayer(d, heads, ff, kernel, dropout, causal=False) for _ in range(layers)])

    def forward(self, x, x_lens):
        t = x.shape[1]
        mask = torch.arange(t, device=x.device)[None, :] < x_lens[:, None]  # [N, T]
        allowed = mask[:, None, None, :]
        for layer in self.layers:
            x = layer(x, allowed, mask)
        return x, x_lens


class Decoder(nn.Module):
    """LSTM prediction network: embedding + LSTM. Blank (id 0) is the start context."""

    def __init__(self, vocab, embed=256, hidden=256, layers=1, dropout=0.1):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.hidden = hidden
        self.num_layers = layers

    def forward(self, y, state=None):  # y [N, U] -> [N, U, H]
        out, state = self.lstm(self.drop(self.embed(y)), state)
        return out, state


class Joiner(nn.Module):
    def __init__(self, d_enc, d_dec, joint, vocab):
        super().__init__()
        self.enc_proj = nn.Linear(d_enc, joint)
        self.dec_proj = nn.Linear(d_dec, joint)
        self.out = nn.Linear(joint, vocab)

    def forward(self, enc, dec):  # broadcastable, already projected or not
        return self.out(torch.tanh(self.enc_proj(enc) + self.dec_proj(dec)))

    def full(self, enc, dec):  # enc [N, T, De], dec [N, U+1, Dd] -> [N, T, U+1, V]
        return self.out(torch.tanh(self.enc_proj(enc).unsqueeze(2) + self.dec_proj(dec).unsqueeze(1)))


class CascadedTransducer(nn.Module):
    """lookahead_decoder=True: the look-ahead pass has its own prediction and joint networks
    (decoder_la, joiner_la; exported as decoder_lookahead / joiner_lookahead, docs/bundle.md), the
    two-decoder variant that asrc's share-decoder pass merges back into one pair."""

    def __init__(self, vocab=256, d=144, heads=4, ff=576, causal_layers=8, noncausal_layers=2,
                 kernel=15, sub_channels=64, chunk_frames=32, left_context=64, dec_embed=256,
                 dec_hidden=256, dec_layers=1, joint=256, dropout=0.1, lookahead_decoder=False):
        super().__init__()
        self.config = dict(vocab=vocab, d=d, heads=heads, ff=ff, causal_layers=causal_layers,
                           noncausal_layers=noncausal_layers, kernel=kernel, sub_channels=sub_channels,
                           chunk_frames=chunk_frames, left_context=left_context, dec_embed=dec_embed,
                           dec_hidden=dec_hidden, dec_layers=dec_layers, joint=joint, dropout=dropout)
        if lookahead_decoder:
            self.config["lookahead_decoder"] = True
        self.encoder_causal = CausalEncoder(80, d, heads, ff, causal_layers, kernel, sub_channels,
                                            chunk_frames, left_context, dropout)
        self.encoder_noncausal = NonCausalEncoder(d, heads, ff, noncausal_layers, kernel, dropout)
        self.decoder = Decoder(vocab, dec_embed, dec_hidden, dec_layers, dropout)
        self.joiner = Joiner(d, dec_hidden, joint, vocab)
        if lookahead_decoder:
            self.decoder_la = Decoder(vocab, dec_embed, dec_hidden, dec_layers, dropout)
            self.joiner_la = Joiner(d, dec_hidden, joint, vocab)
        self.ctc = nn.Linear(d, vocab)  # auxiliary CTC head (training only, not exported)

    def pair(self, lookahead):
        """(decoder, joiner) of the streaming or the look-ahead pass."""
        if lookahead and self.config.get("lookahead_decoder"):
            return self.decoder_la, self.joiner_la
        return self.decoder, self.joiner


PRESETS = {
    # demo teacher (~5M parameters)
    "demo": dict(vocab=256, d=144, heads=4, ff=576, causal_layers=7, noncausal_layers=2, kernel=15,
                 sub_channels=64, chunk_frames=32, left_context=64, dec_embed=256, dec_hidden=256,
                 dec_layers=1, joint=256),
    # paper-scale (~41M parameters), exported with random weights
    "paper": dict(vocab=500, d=256, heads=4, ff=1024, causal_layers=21, noncausal_layers=4, kernel=31,
                  sub_channels=128, chunk_frames=32, left_context=64, dec_embed=320, dec_hidden=320,
                  dec_layers=2, joint=512),
}


def count(m):
    return sum(p.numel() for p in m.parameters())
