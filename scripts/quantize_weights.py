"""Int8 weight-only, per-output-channel, symmetric quantisation of an ONNX model.

For every Conv weight and the classifier Gemm/MatMul weight:

    W (fp32 initializer)  ->  W_q (int8) , scale (fp32 [C]) , zero_point (int8 [C] = 0)
                              DequantizeLinear(W_q, scale, zero_point, axis=c) -> original op

    scale[c] = max|W[c]| / 127        (c = output channel; all-zero channel -> scale 1)
    W_q      = clip(round_half_even(W / scale), -127, 127)

Why this formulation: activations stay fp32 and every weight is a constant
subgraph (initializers -> DequantizeLinear), so the file stores int8 (~4x
smaller) while the math is the original fp32 graph. A runtime that constant
folds DQ-of-initializer at session load runs it at fp32 speed; one that does
not still gets correct results and pays one dequantisation per weight per run.
Symmetric with zero_point 0 and range [-127, 127] (not -128) keeps the grid
symmetric around zero, which is what per-channel weight quantisers conventionally do.
Biases (and BatchNorm parameters that could not be folded, e.g. DenseNet's
pre-activation BNs) stay fp32: they are tiny and quantising them buys nothing.

Run standalone: python3 scripts/quantize_weights.py in.fp32.onnx out.int8.onnx
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QMAX = 127


def quantize_per_channel(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns (int8 weights, float32 scales along `axis`)."""
    w = w.astype(np.float32)
    reduce_axes = tuple(i for i in range(w.ndim) if i != axis)
    amax = np.max(np.abs(w), axis=reduce_axes)
    # Guard all-zero channels: any positive scale reproduces zeros exactly.
    scale = np.where(amax > 0, amax / np.float32(QMAX), np.float32(1.0)).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    # np.rint = round half to even, applied consistently to every weight.
    q = np.clip(np.rint(w / scale.reshape(shape)), -QMAX, QMAX).astype(np.int8)
    return q, scale


def _weight_axis(node: onnx.NodeProto, w: np.ndarray) -> int | None:
    """Output-channel axis of the weight input for the ops we quantise."""
    if node.op_type == "Conv":
        return 0  # [out, in/groups, kh, kw]
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1  # B is [N, K] when transB=1, else [K, N]
    if node.op_type == "MatMul" and w.ndim == 2:
        return 1  # x @ B, B is [K, N]
    return None


def quantize_weight_only(model: onnx.ModelProto) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    # An initializer consumed by more than one node is left alone: rewriting it
    # for one consumer would silently change the others.
    uses: dict[str, int] = {}
    for n in g.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1

    new_nodes: list[onnx.NodeProto] = []
    remove: set[str] = set()
    new_inits: list[onnx.TensorProto] = []
    count = 0
    for n in g.node:
        if n.op_type in ("Conv", "Gemm", "MatMul") and len(n.input) > 1 and n.input[1] in inits \
                and uses.get(n.input[1], 0) == 1:
            name = n.input[1]
            w = numpy_helper.to_array(inits[name])
            axis = _weight_axis(n, w)
            if axis is not None and w.dtype == np.float32:
                q, scale = quantize_per_channel(w, axis)
                base = name
                new_inits += [
                    numpy_helper.from_array(q, f"{base}_quantized"),
                    numpy_helper.from_array(scale, f"{base}_scale"),
                    numpy_helper.from_array(np.zeros(scale.shape, np.int8), f"{base}_zero_point"),
                ]
                new_nodes.append(helper.make_node(
                    "DequantizeLinear",
                    [f"{base}_quantized", f"{base}_scale", f"{base}_zero_point"],
                    [f"{base}_dequantized"],
                    name=f"{base}_DequantizeLinear",
                    axis=axis,
                ))
                n.input[1] = f"{base}_dequantized"
                remove.add(name)
                count += 1
        new_nodes.append(n)

    kept = [t for t in g.initializer if t.name not in remove]
    del g.initializer[:]
    g.initializer.extend(kept + new_inits)
    del g.node[:]
    g.node.extend(new_nodes)  # DQ nodes sit right before their consumer: still topologically sorted
    # Drop stale value_info for the removed fp32 weights (if the exporter emitted any).
    vi = [v for v in g.value_info if v.name not in remove]
    del g.value_info[:]
    g.value_info.extend(vi)
    if count == 0:
        raise RuntimeError("no weights quantised: unexpected graph")
    # Sanity: nothing float-sized and large left behind except BN params/biases.
    return m


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit("usage: quantize_weights.py in.fp32.onnx out.int8.onnx")
    m = quantize_weight_only(onnx.load(argv[0]))
    onnx.checker.check_model(m)
    onnx.save(m, argv[1])


if __name__ == "__main__":
    main(sys.argv[1:])
