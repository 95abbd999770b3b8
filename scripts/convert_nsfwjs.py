"""Convert nsfwjs's bundled MobileNetV2 (TF.js layers format) to ONNX, then int8.

    node scripts/extract-nsfwjs.mjs          # build/nsfwjs/mobilenet_v2/{model.json,weights.bin}
    /usr/bin/python3 scripts/convert_nsfwjs.py

(this script runs the extraction itself when its output is missing.)

Source: the `nsfwjs` npm package (MIT, Copyright (c) 2019 Infinite Red, Inc.),
pinned as a devDependency. Its MobileNetV2 ships as browserify UMD wrappers
(`dist/models/mobilenet_v2/model.min.js` = model.json, `group1-shard1of1.min.js`
= the weight shard as base64); scripts/extract-nsfwjs.mjs unwraps them.

The model is a Keras 2.2.4 functional graph: ZeroPadding2D, Conv2D,
DepthwiseConv2D, BatchNormalization, ReLU(max_value=6), Add,
AveragePooling2D(7x7), Flatten, Dense(relu/relu/softmax), Dropout. Every
weight is stored uint8-affine-quantised (TF.js `quantization: {min, scale,
dtype: uint8}`); it is dequantised exactly as tfjs-core's io_utils does
(`v * scale + min` in double, stored as float32), so the fp32 ONNX model holds
the very float32 weights TF.js computes with.

Mapping (graph is NCHW inside; one Transpose after the NHWC input):
  ZeroPadding2D -> folded into the next conv's `pads` (a Pad op otherwise)
  Conv2D / DepthwiseConv2D -> Conv (group=C for depthwise); TF "same" padding
      becomes explicit, possibly asymmetric pads (TF pads the extra pixel at the end)
  BatchNormalization -> folded into the preceding conv (in float64, then float32)
  ReLU(max_value=6) -> Clip(0, 6); ReLU() -> Relu
  Add -> Add; AveragePooling2D -> AveragePool; Flatten -> Flatten (spatial is 1x1,
      so NHWC and NCHW flatten orders agree; asserted)
  Dense -> Gemm (+ Relu / Softmax for its activation); Dropout -> identity

Output: input `input` float32 NHWC [batch,224,224,3] in [0,1] (pixel / 255),
output `probabilities` [batch,5] (the model's own softmax). Opset 13.
Writes build/models/mobilenet-v2-nsfw/model.fp32.onnx (gitignored) and
models/mobilenet-v2-nsfw/model.int8.onnx (weight-only 8-bit: nsfwjs's own uint8
weight codes behind per-channel DequantizeLinear, lossless; see
Converter.raw_weight), the manifest, the label
file models/labels/nsfw-5.json, the .sha256 file and models/SHA256SUMS.

Deterministic: no randomness, pinned protobuf metadata; reruns are byte-identical.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_files import pin_free_fields, sha256_file, write_bytes, write_sha256sums  # noqa: E402
from quantize_weights import quantize_weight_only  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SRC_DIR = ROOT / "build" / "nsfwjs" / "mobilenet_v2"
MODEL_ID = "mobilenet-v2-nsfw"
BUILD_DIR = ROOT / "build" / "models" / MODEL_ID
MODELS_DIR = ROOT / "models"
OPSET = 13
PRODUCER = "edgetag scripts/convert_nsfwjs.py"
PRODUCER_VERSION = "1"
# nsfwjs's NSFW_CLASSES (dist/esm/nsfw_classes.js), index order.
CLASSES = ["Drawing", "Hentai", "Neutral", "Porn", "Sexy"]


# --------------------------------------------------------------------------
# TF.js layers-format reading
# --------------------------------------------------------------------------

class Raw(tuple):
    """(uint8 codes reshaped like the weight, scale, min) of a uint8-quantised TF.js weight."""


def load_tfjs(src: Path) -> tuple[dict, dict[str, np.ndarray], dict[str, Raw]]:
    mj = json.loads((src / "model.json").read_text())
    blob = (src / "weights.bin").read_bytes()
    weights: dict[str, np.ndarray] = {}
    raws: dict[str, Raw] = {}
    off = 0
    for group in mj["weightsManifest"]:
        for spec in group["weights"]:
            n = int(np.prod(spec["shape"])) if spec["shape"] else 1
            if spec["dtype"] != "float32":
                raise ValueError(f"{spec['name']}: dtype {spec['dtype']} not handled")
            q = spec.get("quantization")
            if q is None:
                arr = np.frombuffer(blob, np.float32, n, off).copy()
                off += 4 * n
            elif q["dtype"] == "uint8":
                raw = np.frombuffer(blob, np.uint8, n, off)
                off += n
                # tfjs-core io_utils: values[i] = v * scale + min (JS doubles) into a Float32Array.
                arr = (raw.astype(np.float64) * q["scale"] + q["min"]).astype(np.float32)
                raws[spec["name"]] = Raw((raw.reshape(spec["shape"]), float(q["scale"]), float(q["min"])))
            elif q["dtype"] == "uint16":
                raw = np.frombuffer(blob, np.uint16, n, off)
                off += 2 * n
                arr = (raw.astype(np.float64) * q["scale"] + q["min"]).astype(np.float32)
            elif q["dtype"] == "float16":
                arr = np.frombuffer(blob, np.float16, n, off).astype(np.float32)
                off += 2 * n
            else:
                raise ValueError(f"{spec['name']}: quantization {q['dtype']} not handled")
            weights[spec["name"]] = arr.reshape(spec["shape"])
    if off != len(blob):
        raise ValueError(f"weight manifest covers {off} bytes, shard has {len(blob)}")
    return mj, weights, raws


# --------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------

def tf_same_pads(size: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """TF 'SAME': out = ceil(in / s); the odd padding pixel goes at the end."""
    k_eff = (k - 1) * d + 1
    out = -(-size // s)
    total = max((out - 1) * s + k_eff - size, 0)
    return total // 2, total - total // 2


class Converter:
    def __init__(self, mj: dict, weights: dict[str, np.ndarray], raws: dict[str, Raw] | None = None):
        """raws=None: plain fp32 weights (BN folded). raws given: every conv / dense kernel is
        stored as nsfwjs's own uint8 codes, DequantizeLinear(q, scale, 0) + min, with the
        BatchNorm scale applied as a per-output-channel Mul: lossless, same bytes as shipped."""
        self.raws = raws
        cfg = mj["modelTopology"]["model_config"]
        if cfg["class_name"] not in ("Model", "Functional"):
            raise ValueError(f"top-level {cfg['class_name']} not handled")
        self.layers = cfg["config"]["layers"]
        self.by_name = {l["name"]: l for l in self.layers}
        self.inputs_cfg = cfg["config"]["input_layers"]
        self.outputs_cfg = cfg["config"]["output_layers"]
        self.w = weights
        self.used: set[str] = set()
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.shape: dict[str, tuple[int, int, int]] = {}  # tensor -> (C, H, W)
        self.tensor: dict[str, str] = {}  # keras layer name -> ONNX tensor name
        self.consumers: dict[str, list[str]] = {}
        self.pending_pad: dict[str, tuple[str, list[int]]] = {}  # layer -> (input tensor, [t, l, b, r])
        self.pending_bn: dict[str, dict] = {}  # conv layer -> its data before BN folding
        self.params = 0
        self.macs = 0
        for l in self.layers:
            for src in self._inbound(l):
                self.consumers.setdefault(src, []).append(l["name"])

    @staticmethod
    def _inbound(layer: dict) -> list[str]:
        nodes = layer["inbound_nodes"]
        if not nodes:
            return []
        if len(nodes) != 1:
            raise ValueError(f"{layer['name']}: shared layers not handled")
        return [n[0] for n in nodes[0]]

    def weight(self, name: str) -> np.ndarray:
        self.used.add(name)
        return self.w[name]

    def add_init(self, name: str, arr: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def raw_weight(self, name: str, kname: str, layout, s: np.ndarray | None, axis: int = 0) -> str:
        """nsfwjs's own uint8 codes behind one per-channel DequantizeLinear, losslessly.

        TF.js's converter nudges every kernel's range so that zero is exactly
        representable: min = -zp * scale with an integer zp (checked below), so the
        TF.js weight q * scale + min equals (q - zp) * scale. The BatchNorm fold
        multiplies output channel c by s[c], which only changes that channel's scale:
        W'[c] = (q - zp) * (scale * s[c]). Hence a standard uint8 per-output-channel
        DequantizeLinear with zero point zp reproduces the folded fp32 weights to
        float32 rounding, storing exactly the bytes nsfwjs ships.
        """
        q, scale, mn = self.raws[kname]
        zp = -mn / scale
        if abs(zp - round(zp)) > 1e-6 or not 0 <= round(zp) <= 255:
            raise ValueError(f"{kname}: min/scale = {zp} is not an integer zero point")
        qo = layout(q)
        c = qo.shape[axis]
        ch_scale = np.full(c, scale, np.float64) * (s if s is not None else 1.0)
        qn = self.add_init(f"{name}/W_quantized", qo)
        sn = self.add_init(f"{name}/W_scale", ch_scale.astype(np.float32))
        zn = self.add_init(f"{name}/W_zero_point", np.full(c, round(zp), np.uint8))
        return self.node("DequantizeLinear", [qn, sn, zn], f"{name}/W_dequantized", axis=axis)

    def activation(self, act: str, x: str, name: str) -> str:
        if act == "linear":
            return x
        if act == "relu":
            return self.node("Relu", [x], f"{name}/relu")
        if act == "softmax":
            return self.node("Softmax", [x], f"{name}/softmax", axis=-1)
        raise ValueError(f"{name}: activation {act} not handled")

    def convert(self) -> onnx.ModelProto:
        self.add_init("relu6/min", np.array(0.0, np.float32))
        self.add_init("relu6/max", np.array(6.0, np.float32))
        for layer in self.layers:
            getattr(self, f"_{layer['class_name']}")(layer)
        unused = set(self.w) - self.used
        if unused:
            raise ValueError(f"weights never used: {sorted(unused)}")
        (out_layer, _, _), = self.outputs_cfg
        out = self.tensor[out_layer]
        self.nodes.append(helper.make_node("Identity", [out], ["probabilities"], name="probabilities"))
        feat, feat_dim = self.features
        self.nodes.append(helper.make_node("Identity", [feat], ["features"], name="features"))
        (in_layer, _, _), = self.inputs_cfg
        h, w, c = self.by_name[in_layer]["config"]["batch_input_shape"][1:]
        graph = helper.make_graph(
            self.nodes,
            "edgetag",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", h, w, c])],
            [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", self.num_classes]),
             helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", feat_dim])],
            self.inits,
        )
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        m.ir_version = 7  # ONNX 1.8+ readers; opset 13
        pin_free_fields(m, PRODUCER, PRODUCER_VERSION)
        onnx.checker.check_model(m)
        return m

    # ---- layers -----------------------------------------------------------

    def _InputLayer(self, l: dict) -> None:
        h, w, c = l["config"]["batch_input_shape"][1:]
        t = self.node("Transpose", ["input"], f"{l['name']}/nchw", perm=[0, 3, 1, 2])
        self.tensor[l["name"]] = t
        self.shape[t] = (c, h, w)

    def _ZeroPadding2D(self, l: dict) -> None:
        (src,) = self._inbound(l)
        x = self.tensor[src]
        (t, b), (left, r) = l["config"]["padding"]
        assert l["config"]["data_format"] == "channels_last"
        cons = self.consumers.get(l["name"], [])
        c, h, w = self.shape[x]
        if len(cons) == 1 and self.by_name[cons[0]]["class_name"] in ("Conv2D", "DepthwiseConv2D") \
                and self.by_name[cons[0]]["config"]["padding"] == "valid":
            # Fold: zero padding followed by a valid conv == the conv with those pads.
            self.pending_pad[l["name"]] = (x, [t, left, b, r])
            self.tensor[l["name"]] = l["name"]  # placeholder, resolved by the conv
            self.shape[l["name"]] = (c, h + t + b, w + left + r)
            return
        pads = self.add_init(f"{l['name']}/pads", np.array([0, 0, t, left, 0, 0, b, r], np.int64))
        y = self.node("Pad", [x, pads], l["name"], mode="constant")
        self.tensor[l["name"]] = y
        self.shape[y] = (c, h + t + b, w + left + r)

    def _conv(self, l: dict, depthwise: bool) -> None:
        cfg = l["config"]
        (src,) = self._inbound(l)
        assert cfg["data_format"] == "channels_last"
        if src in self.pending_pad:
            x, pre = self.pending_pad.pop(src)
        else:
            x, pre = self.tensor[src], [0, 0, 0, 0]
        c_in, h, w = self.shape[x]
        h_p, w_p = h + pre[0] + pre[2], w + pre[1] + pre[3]
        kh, kw = cfg["kernel_size"]
        sh, sw = cfg["strides"]
        dh, dw = cfg["dilation_rate"]
        if cfg["padding"] == "same":
            assert pre == [0, 0, 0, 0]
            pt, pb = tf_same_pads(h, kh, sh, dh)
            pl, pr = tf_same_pads(w, kw, sw, dw)
        elif cfg["padding"] == "valid":
            pt, pl, pb, pr = pre
        else:
            raise ValueError(f"{l['name']}: padding {cfg['padding']} not handled")
        h_out = (h_p - ((kh - 1) * dh + 1)) // sh + 1 if cfg["padding"] == "valid" else -(-h // sh)
        w_out = (w_p - ((kw - 1) * dw + 1)) // sw + 1 if cfg["padding"] == "valid" else -(-w // sw)
        if depthwise:
            k = self.weight(f"{l['name']}/depthwise_kernel")  # [kh, kw, in, mult]
            mult = cfg["depth_multiplier"]
            assert k.shape == (kh, kw, c_in, mult)
            def layout(a, c_in=c_in, mult=mult, kh=kh, kw=kw):
                return a.transpose(2, 3, 0, 1).reshape(c_in * mult, 1, kh, kw)  # out channel = i * mult + m
            kname = f"{l['name']}/depthwise_kernel"
            group = c_in
        else:
            k = self.weight(f"{l['name']}/kernel")  # [kh, kw, in, out]
            assert k.shape[:3] == (kh, kw, c_in)
            def layout(a):
                return a.transpose(3, 2, 0, 1)
            kname = f"{l['name']}/kernel"
            group = 1
        wt = layout(k)
        c_out = wt.shape[0]
        bias = self.weight(f"{l['name']}/bias") if cfg["use_bias"] else np.zeros(c_out, np.float32)
        self.params += k.size + (c_out if cfg["use_bias"] else 0)
        self.macs += h_out * w_out * c_out * (wt.shape[1] * kh * kw)
        attrs = dict(kernel_shape=[kh, kw], strides=[sh, sw], dilations=[dh, dw], pads=[pt, pl, pb, pr], group=group)
        out = l["name"]
        self.pending_bn[out] = dict(x=x, w=wt.astype(np.float64), b=bias.astype(np.float64), attrs=attrs,
                                    kname=kname, layout=layout, s=None)
        self.tensor[out] = out
        self.shape[out] = (c_out, h_out, w_out)
        cons = self.consumers.get(out, [])
        if not (len(cons) == 1 and self.by_name[cons[0]]["class_name"] == "BatchNormalization"):
            self._emit_conv(out)
        if cfg["activation"] != "linear":
            raise ValueError(f"{l['name']}: fused activation not handled")

    def _emit_conv(self, name: str) -> None:
        p = self.pending_bn.pop(name)
        if self.raws is not None:
            wn = self.raw_weight(name, p["kname"], p["layout"], p["s"])
        else:
            wn = self.add_init(f"{name}/W", p["w"].astype(np.float32))
        bn = self.add_init(f"{name}/B", p["b"].astype(np.float32))
        self.node("Conv", [p["x"], wn, bn], name, **p["attrs"])

    def _Conv2D(self, l: dict) -> None:
        self._conv(l, depthwise=False)

    def _DepthwiseConv2D(self, l: dict) -> None:
        self._conv(l, depthwise=True)

    def _BatchNormalization(self, l: dict) -> None:
        cfg = l["config"]
        (src,) = self._inbound(l)
        assert cfg["axis"] in (-1, 3), "BN over channels_last only"
        if src not in self.pending_bn:
            raise ValueError(f"{l['name']}: BatchNormalization not after a conv, cannot fold")
        n = l["name"]
        c = self.shape[src][0]
        gamma = self.weight(f"{n}/gamma").astype(np.float64) if cfg["scale"] else np.ones(c)
        beta = self.weight(f"{n}/beta").astype(np.float64) if cfg["center"] else np.zeros(c)
        mean = self.weight(f"{n}/moving_mean").astype(np.float64)
        var = self.weight(f"{n}/moving_variance").astype(np.float64)
        # Counted like torch's parameters(): gamma and beta only, not the running statistics
        # (Keras's count_params() would add moving mean/variance), as for the other manifests.
        self.params += (1 if cfg["scale"] else 0) * c + (1 if cfg["center"] else 0) * c
        s = gamma / np.sqrt(var + cfg["epsilon"])
        p = self.pending_bn[src]
        p["w"] = p["w"] * s.reshape(-1, 1, 1, 1)
        p["s"] = s
        p["b"] = (p["b"] - mean) * s + beta
        self._emit_conv(src)
        self.tensor[n] = src
        # the conv's ONNX output keeps the conv's name; the BN layer aliases it

    def _ReLU(self, l: dict) -> None:
        cfg = l["config"]
        (src,) = self._inbound(l)
        x = self.tensor[src]
        if cfg.get("negative_slope", 0) != 0 or cfg.get("threshold", 0) != 0:
            raise ValueError(f"{l['name']}: leaky/thresholded ReLU not handled")
        if cfg.get("max_value") is None:
            y = self.node("Relu", [x], l["name"])
        else:
            mx = float(cfg["max_value"])
            hi = "relu6/max" if mx == 6.0 else self.add_init(f"{l['name']}/max", np.array(mx, np.float32))
            y = self.node("Clip", [x, "relu6/min", hi], l["name"])
        self.tensor[l["name"]] = y
        self.shape[y] = self.shape[x]

    def _Add(self, l: dict) -> None:
        a, b = (self.tensor[s] for s in self._inbound(l))
        assert self.shape[a] == self.shape[b]
        y = self.node("Add", [a, b], l["name"])
        self.tensor[l["name"]] = y
        self.shape[y] = self.shape[a]

    def _AveragePooling2D(self, l: dict) -> None:
        cfg = l["config"]
        (src,) = self._inbound(l)
        x = self.tensor[src]
        c, h, w = self.shape[x]
        ph, pw = cfg["pool_size"]
        sh, sw = cfg["strides"]
        assert cfg["padding"] == "valid"
        y = self.node("AveragePool", [x], l["name"], kernel_shape=[ph, pw], strides=[sh, sw])
        self.tensor[l["name"]] = y
        self.shape[y] = (c, (h - ph) // sh + 1, (w - pw) // sw + 1)

    def _Flatten(self, l: dict) -> None:
        (src,) = self._inbound(l)
        x = self.tensor[src]
        c, h, w = self.shape[x]
        # NHWC flatten order == NCHW flatten order only when there is one pixel.
        assert (h, w) == (1, 1), "Flatten of a spatial map needs a transpose back to NHWC"
        y = self.node("Flatten", [x], l["name"], axis=1)
        # The pooled backbone output: what Keras' include_top=False + pooling gives,
        # exported as the "features" output for /v1/embed.
        self.features = (y, c)
        self.tensor[l["name"]] = y
        self.shape[y] = (c, 1, 1)

    def _Dropout(self, l: dict) -> None:
        (src,) = self._inbound(l)
        self.tensor[l["name"]] = self.tensor[src]  # inference: identity

    def _Dense(self, l: dict) -> None:
        cfg = l["config"]
        (src,) = self._inbound(l)
        x = self.tensor[src]
        k = self.weight(f"{l['name']}/kernel")  # [in, out]
        b = self.weight(f"{l['name']}/bias") if cfg["use_bias"] else np.zeros(k.shape[1], np.float32)
        self.params += k.size + (k.shape[1] if cfg["use_bias"] else 0)
        self.macs += k.size
        if self.raws is not None:
            kn = self.raw_weight(l["name"], f"{l['name']}/kernel", lambda a: a, None, axis=1)
        else:
            kn = self.add_init(f"{l['name']}/W", k.astype(np.float32))
        bn = self.add_init(f"{l['name']}/B", b.astype(np.float32))
        y = self.node("Gemm", [x, kn, bn], l["name"], transB=0)
        y = self.activation(cfg["activation"], y, l["name"])
        self.tensor[l["name"]] = y
        self.shape[y] = (k.shape[1], 1, 1)
        self.num_classes = k.shape[1]


# --------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------

def nsfwjs_version() -> str:
    pkg = json.loads((ROOT / "node_modules" / "nsfwjs" / "package.json").read_text())
    return pkg["version"]


def manifest_for(int8_path: Path, params: int, macs: int, version: str) -> dict:
    sha = sha256_file(int8_path)
    return {
        "id": MODEL_ID,
        "version": f"{version}-int8",
        "name": "NSFW classifier (nsfwjs MobileNetV2, 5 classes)",
        "description": (
            "The trained MobileNetV2 (224x224) that the nsfwjs npm package ships, converted from "
            "TF.js layers format to ONNX by scripts/convert_nsfwjs.py (BatchNorm folded into the "
            "convolutions; 8-bit weights exactly as nsfwjs ships them). Classes: Drawing, Hentai, Neutral, Porn, Sexy. "
            "Preprocessing reproduces nsfwjs's own: pixel / 255, then a plain (not antialiased) "
            "tf.image.resizeBilinear to 224x224 with alignCorners=true, ignoring aspect ratio."
        ),
        "architecture": "Keras MobileNetV2 (alpha 1.0) + Dense(256, relu) + Dense(128, relu) + Dense(5, softmax)",
        "trained": True,
        "license": (
            "MIT. Copyright (c) 2019 Infinite Red, Inc. (nsfwjs model and weights); "
            "conversion by this repository's scripts/convert_nsfwjs.py."
        ),
        "source": (
            f"npm nsfwjs@{version} (https://github.com/infinitered/nsfwjs), "
            "dist/models/mobilenet_v2 (model.min.js + group1-shard1of1.min.js, Keras 2.2.4 TF.js "
            "layers model with uint8-quantised weights), unwrapped by scripts/extract-nsfwjs.mjs and "
            f"converted by scripts/convert_nsfwjs.py: ONNX opset {OPSET}, BatchNorm folded, "
            "weights kept as nsfwjs's own uint8 codes (per-channel DequantizeLinear)."
        ),
        "file": {
            "r2Key": f"models/{MODEL_ID}/{sha[:16]}/model.int8.onnx",
            "sha256": sha,
            "bytes": int8_path.stat().st_size,
        },
        "input": {"name": "input", "layout": "NHWC", "width": 224, "height": 224},
        "preprocess": {
            "resize": {"mode": "exact", "width": 224, "height": 224},
            "filter": "bilinear-tf-align-corners",
            "rescale": 1 / 255,
            "mean": [0, 0, 0],
            "std": [1, 1, 1],
        },
        "output": {"name": "probabilities", "kind": "probabilities", "features": {"name": "features", "dim": 1280}},
        "labels": "nsfw-5",
        "numClasses": len(CLASSES),
        "stats": {"parameters": params, "macs": macs},
        "quantization": {
            "scheme": "8-bit weight-only (QDQ DequantizeLinear on weights), lossless w.r.t. nsfwjs",
            "weights": (
                "uint8 affine: nsfwjs's own per-tensor uint8 weight codes and zero point, stored unchanged; "
                "per-output-channel scale = TF.js scale x folded BatchNorm factor"
            ),
            "activations": "fp32",
        },
    }


def main() -> None:
    if not (SRC_DIR / "model.json").exists():
        subprocess.run(["node", str(ROOT / "scripts" / "extract-nsfwjs.mjs"), str(SRC_DIR)], check=True, cwd=ROOT)
    mj, weights, raws = load_tfjs(SRC_DIR)
    version = mj.get("nsfwjsVersion") or nsfwjs_version()
    conv = Converter(mj, weights)
    fp32 = conv.convert()
    if conv.num_classes != len(CLASSES):
        raise ValueError(f"model has {conv.num_classes} classes, expected {len(CLASSES)}")
    fp32_path = BUILD_DIR / "model.fp32.onnx"
    write_bytes(fp32_path, fp32.SerializeToString())

    # Requantised alternative (not shipped, kept for comparison): BN-folded fp32 weights
    # re-gridded to int8 symmetric per output channel by scripts/quantize_weights.py.
    requant = quantize_weight_only(fp32)
    pin_free_fields(requant, PRODUCER, PRODUCER_VERSION)
    onnx.checker.check_model(requant)
    write_bytes(BUILD_DIR / "model.int8-requantized.onnx", requant.SerializeToString())

    # Shipped: nsfwjs's own 8-bit weight codes, stored as they are (see Converter.raw_weight).
    exact = Converter(mj, weights, raws).convert()
    int8_path = MODELS_DIR / MODEL_ID / "model.int8.onnx"
    write_bytes(int8_path, exact.SerializeToString())

    write_bytes(MODELS_DIR / "labels" / "nsfw-5.json", (json.dumps(CLASSES, indent=2) + "\n").encode())
    manifest = manifest_for(int8_path, conv.params, conv.macs, version)
    write_bytes(MODELS_DIR / MODEL_ID / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())
    write_bytes(MODELS_DIR / MODEL_ID / "model.int8.onnx.sha256",
                f"{manifest['file']['sha256']}  model.int8.onnx\n".encode())
    write_sha256sums(MODELS_DIR)
    print(f"[{MODEL_ID}] nsfwjs@{version} params={conv.params} macs={conv.macs}")
    print(f"[{MODEL_ID}] fp32 {fp32_path.stat().st_size} B sha256 {sha256_file(fp32_path)}")
    print(f"[{MODEL_ID}] int8 {manifest['file']['bytes']} B sha256 {manifest['file']['sha256']}")


if __name__ == "__main__":
    main()
