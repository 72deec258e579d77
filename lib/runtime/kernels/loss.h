// Training losses as kernels (domain ai.asrc, float32), each with its gradient as a second
// output. The contract shared with lib/grad: output 1 is d(output 0)/d(input 0) — the gradient
// of the op's reduced loss with respect to its first input (the student's logits or output) —
// so the gradient rule of any of these ops is d(input 0) = grad_output * output 1 (for
// reduction "none", grad_output [B] broadcast over the trailing dimensions of input 0). No
// other input receives a gradient (targets, lengths and the teacher are constants).
// Output 1 has input 0's shape and is zero outside each utterance's valid region.
//
// Common inputs and attributes:
//   logit_lengths [B] (int32 or int64): frames T_b of utterance b, 1 <= T_b <= T.
//   target_lengths [B] (int32 or int64): labels U_b of utterance b, 0 <= U_b <= U.
//   targets [B, U] (int32 or int64): labels, padded; entries past U_b are ignored; each label in
//     [0, V) (a label equal to `blank` is an error).
//   blank (int, default 0): the blank index.
//   reduction ("mean" default | "sum" | "none"): output 0 is a scalar (mean or sum of the
//     per-utterance losses loss_b) or [B] (loss_b). "mean" divides by B, except where noted.
// Lengths or labels out of range, or mismatched shapes, are errors naming the node.
//
// RNNTLoss(logits [B, T, U+1, V], targets, logit_lengths, target_lengths)
//     attrs: blank, reduction, fused_log_softmax (default 1)
//   loss_b = -log P(y_b | x_b), summed over all alignments of the T_b x (U_b + 1) lattice (Graves
//   2012), in log space. fused_log_softmax=1: input 0 holds joiner logits and log-softmax over V
//   is applied inside (the gradient is w.r.t. the logits); 0: input 0 already holds log-
//   probabilities and the gradient is w.r.t. them as independent variables (nonzero only at the
//   blank and the next label). "mean" is the mean over the batch (torchaudio's rnnt_loss).
//
// CTCLoss(logits [B, T, V], targets [B, L], logit_lengths, target_lengths)
//     attrs: blank, reduction, fused_log_softmax (default 1), zero_infinity (default 0)
//   loss_b = -log P(y_b | x_b) over CTC alignments (Graves 2006) of the first T_b frames.
//   fused_log_softmax as above. "mean" follows torch.nn.functional.ctc_loss: the mean over the
//   batch of loss_b / max(U_b, 1). An impossible alignment (T_b too short) gives loss_b = inf,
//   or 0 with a zero gradient when zero_infinity=1.
//
// TransducerKLLoss(student [B, T, U+1, V], teacher [B, T, U+1, V], logit_lengths, target_lengths)
//     attrs: reduction
//   loss_b = sum over the valid nodes (t < T_b, u <= U_b) of KL(p_teacher || p_student), where
//   p = softmax over V of each side's logits (log-probabilities are valid logits too). A
//   distillation temperature is a Div of both logits before the op. Gradient: p_s - p_t per node.
//
// TransducerCollapsedKLLoss(student [B, T, U+1, V], teacher, targets, logit_lengths,
//                           target_lengths)  attrs: blank, reduction
//   Panchapagesan et al. 2021: at each valid node the distributions are collapsed to three
//   classes — the next correct label y_{u+1}, blank, and all the rest — and loss_b sums
//   KL(teacher3 || student3) over the valid nodes. At u = U_b there is no next label: the label
//   class is empty and the teacher's label-class mass is counted in "rest". The teacher is either
//   [B, T, U+1, 3]: probabilities of (label, blank, rest) per node — O(T*U) memory, the point of
//   the method — or [B, T, U+1, V] logits, collapsed inside. V >= 3.
//
// L2HintLoss(student [B, T, D...], teacher (same shape) [, lengths [B]])  attrs: reduction
//   Squared difference sum over the valid elements (frames t < lengths_b when lengths is given,
//   all otherwise); "mean" ("sum") divides by (does not divide by) the number of valid elements;
//   "none" is not allowed. Gradient: 2 (s - t) / N. Where the widths differ, project the student
//   (a MatMul by a learned matrix) before the op.
#pragma once

namespace asrc::runtime {

class KernelRegistry;
void RegisterLossKernels(KernelRegistry& registry);

}  // namespace asrc::runtime
