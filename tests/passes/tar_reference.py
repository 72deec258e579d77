"""PyTorch reference of the TAR decoder's equations (passes/tar_decoder.h), for tar_decoder_test.

Usage: /usr/bin/python3 tar_reference.py DECODER.onnx Y.pb OUT.pb
Reads the decoder's weights by name from the ONNX file (external data next to it), computes
decoder_out for the labels in Y.pb head by head (not in the graph's folded form), writes OUT.pb.
"""
import sys

import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper


def main(model_path, y_path, out_path):
    model = onnx.load(model_path)  # resolves external data (shared_weights.bin) relative to the file
    w = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()).double() for t in model.graph.initializer}
    y_proto = onnx.TensorProto()
    with open(y_path, "rb") as f:
        y_proto.ParseFromString(f.read())
    y = torch.from_numpy(numpy_helper.to_array(y_proto).copy()).long()  # [N, C]
    table = w["tar.tied_embedding"]  # [V, D]
    pos = w["tar.position_vectors"]  # [H, C, D]
    heads, context, _ = pos.shape
    emb = table[y]  # [N, C, D]
    out = torch.zeros(y.shape[0], table.shape[1], dtype=torch.float64)
    for h in range(heads):
        for c in range(context):
            e, p = emb[:, c, :], pos[h, c, :]
            cos = (e @ p) / (torch.sqrt((e * e).sum(-1) + 1e-8) * torch.sqrt((p * p).sum() + 1e-8))
            out += cos[:, None] * e
    out /= heads * context
    if "tar.post.weight" in w:
        out = F.linear(out, w["tar.post.weight"], w["tar.post.bias"])
        out = F.layer_norm(out, (out.shape[-1],), w["tar.post.norm.scale"], w["tar.post.norm.bias"], 1e-5)
        out = F.silu(out)
    with open(out_path, "wb") as f:
        f.write(numpy_helper.from_array(out.float().numpy(), "decoder_out").SerializeToString())


if __name__ == "__main__":
    main(*sys.argv[1:4])
