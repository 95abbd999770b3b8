#!/usr/bin/python3
"""Build the two committed edgetag models: deterministic, UNTRAINED weights.

    /usr/bin/python3 scripts/build_models.py            # build both
    /usr/bin/python3 scripts/build_models.py mobilenet-v2

Why untrained: we ship no pretrained weights (licence + provenance), but the
serving pipeline (decode -> resize -> crop -> normalise -> ORT -> softmax ->
labels) must be exercised end to end with real architectures, real sizes and
real latency. The weights are therefore generated here from a fixed seed; the
labels they produce are NOT meaningful predictions.

Steps per model (each one deterministic):
  1. torchvision architecture with weights=None, initialised under a fixed seed;
     conv weights snapped to their int8 per-channel grid (snap_convs_to_int8_grid).
  2. BatchNorm calibration: BN layers in train mode with momentum=None
     (cumulative average) over synthetic images (BN shift BN_BETA), so the running statistics
     describe real activations instead of the (0, 1) defaults. Without this
     activations blow up / collapse layer after layer and logits are degenerate.
  3. Classifier head calibration (see calibrate_head): centre and scale the
     final Linear so different images get different, well separated top-5s.
  4. ONNX export (opset 13, constant folding folds eval-mode BN into convs).
  5. Int8 weight-only quantisation (npm run models:quantize, in Node).
  6. manifest.json, .sha256 files, models/SHA256SUMS.

Outputs:
  build/models/<id>/model.fp32.onnx   (gitignored, for verification only)
  models/<id>/model.int8.onnx         (committed)
  models/<id>/model.int8.onnx.sha256  (sha256sum format)
  models/<id>/manifest.json           (satisfies src/models/manifest.ts)
  models/SHA256SUMS

Reproducibility: single-threaded torch, deterministic algorithms, fixed
seeds, and every free-form field of the ONNX protobuf (doc strings, producer)
pinned, so two runs on the same machine give byte-identical files. Across CPU
types the float math of the calibration pass could in principle differ in the
last ulp; the file sha256 is what the manifest pins, not the script.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_files import pin_free_fields, sha256_file, write_bytes, write_sha256sums  # noqa: E402
from quantize_weights import quantize_per_channel, quantize_weight_only  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = ROOT / "models"
BUILD_DIR = ROOT / "build" / "models"

SEED = 20240601
OPSET = 13
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

# Calibration set sizes. BN stats use CALIB_BN images; the head is fitted on a
# disjoint set of CALIB_HEAD images (so the centring is not fitted to the very
# images it is measured on).
CALIB_BN = 96
CALIB_HEAD = 64
CALIB_BATCH = 16

# Target spread of the logits across the 1000 classes (std), averaged over the
# head-calibration images. ~3 gives a softmax whose top-1 carries a few % to a
# few tens of % of the mass instead of a flat 0.001 everywhere.
TARGET_LOGIT_STD = 3.0

# BatchNorm beta (shift) applied to every BN before calibration, in units of
# the normalised activation. Random ReLU networks whose BN re-centres every
# layer are chaotic: a 1-LSB input change decorrelates the output almost as
# much as a different image does. Shifting pre-activations to N(2, 1) keeps
# ~98% of ReLU/ReLU6 units in their linear range, which takes the network out
# of that regime (measured on MobileNetV2: feature change under +-1.5 LSB noise
# relative to between-image distance 0.65 -> 0.13).
BN_BETA = 2.0

# Gaussian "sensor noise" (in 8-bit steps) added to the BN calibration images.
# Smooth synthetic images give high-frequency filters near-zero variance, so
# BN would normalise them with a huge gain and amplify pixel noise; a noise
# floor bounds that gain (0.13 -> 0.05 in the measurement above).
CALIB_NOISE_LSB = 12.0

# Amplitude (in 8-bit steps, peak to peak) of the uniform pixel noise used to
# find noise-robust feature directions for the head, and size of that head.
NOISE_LSB = 3.0
HEAD_PCA = 32
HEAD_RANK = 8

PRODUCER = "edgetag scripts/build_models.py"
PRODUCER_VERSION = f"torch-{torch.__version__.split('+')[0]}/torchvision-{torchvision.__version__.split('+')[0]}"

SPECS = {
    "mobilenet-v2": {
        "ctor": torchvision.models.mobilenet_v2,
        "architecture": "torchvision.models.mobilenet_v2",
        "name": "MobileNetV2 (torchvision architecture, untrained weights)",
        "seed_offset": 1,
    },
    "densenet-121": {
        "ctor": torchvision.models.densenet121,
        "architecture": "torchvision.models.densenet121",
        "name": "DenseNet-121 (torchvision architecture, untrained weights)",
        "seed_offset": 2,
    },
}


def setup_determinism() -> None:
    # One thread: reductions in conv/matmul kernels are then evaluated in a
    # fixed order, so BN statistics (and hence folded weights) are bit-stable.
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False  # irrelevant on CPU, harmless


# --------------------------------------------------------------------------
# Synthetic calibration images
# --------------------------------------------------------------------------

def synthetic_images(n: int, seed: int, noise_lsb: float = 0.0) -> torch.Tensor:
    """n deterministic 3x224x224 images in [0,1], then ImageNet-normalised.

    A mix of the low-frequency structure real photos have (so BN statistics
    resemble natural-image statistics more than white noise would):
      kind 0: smooth random colour field (coarse noise, bicubic-upsampled)
      kind 1: linear colour gradient at a random angle + mild texture
      kind 2: a few soft Gaussian colour blobs on a random background
      kind 3: stripes / checker pattern (edges at one dominant frequency)
    """
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(n, 3, 224, 224)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 224), torch.linspace(0, 1, 224), indexing="ij")
    for i in range(n):
        kind = i % 4
        if kind == 0:
            res = int(torch.randint(3, 17, (1,), generator=g))
            coarse = torch.rand(1, 3, res, res, generator=g)
            img = F.interpolate(coarse, size=(224, 224), mode="bicubic", align_corners=False)[0]
        elif kind == 1:
            ang = float(torch.rand(1, generator=g)) * 2 * np.pi
            t = (np.cos(ang) * xx + np.sin(ang) * yy)
            t = (t - t.min()) / (t.max() - t.min())
            c0 = torch.rand(3, 1, 1, generator=g)
            c1 = torch.rand(3, 1, 1, generator=g)
            img = c0 * (1 - t) + c1 * t
            tex = F.interpolate(torch.rand(1, 3, 56, 56, generator=g), size=(224, 224), mode="bilinear",
                                align_corners=False)[0]
            img = img + 0.15 * (tex - 0.5)
        elif kind == 2:
            img = torch.rand(3, 1, 1, generator=g).expand(3, 224, 224).clone()
            for _ in range(int(torch.randint(2, 7, (1,), generator=g))):
                cx, cy = torch.rand(2, generator=g).tolist()
                sig = 0.05 + 0.2 * float(torch.rand(1, generator=g))
                col = torch.rand(3, 1, 1, generator=g)
                w = torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sig * sig))
                img = img * (1 - w) + col * w
        else:
            freq = 2 + 30 * float(torch.rand(1, generator=g))
            ang = float(torch.rand(1, generator=g)) * np.pi
            t = np.cos(ang) * xx + np.sin(ang) * yy
            s = 0.5 + 0.5 * torch.sin(2 * np.pi * freq * t)
            if float(torch.rand(1, generator=g)) < 0.5:  # checker: multiply by the orthogonal wave
                t2 = -np.sin(ang) * xx + np.cos(ang) * yy
                s = s * (0.5 + 0.5 * torch.sin(2 * np.pi * freq * t2))
            c0 = torch.rand(3, 1, 1, generator=g)
            c1 = torch.rand(3, 1, 1, generator=g)
            img = c0 * (1 - s) + c1 * s
        if noise_lsb > 0:
            img = img + torch.randn(img.shape, generator=g) * (noise_lsb / 255)
        out[i] = img.clamp(0, 1)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (out - mean) / std


# --------------------------------------------------------------------------
# Model construction and calibration
# --------------------------------------------------------------------------

def build_model(spec: dict, seed: int) -> nn.Module:
    # torchvision's own init (kaiming-normal convs, N(0, 0.01) / default
    # Linear, BN gamma=1 beta=0) drawn from the global generator under our seed.
    torch.manual_seed(seed)
    model = spec["ctor"](weights=None)
    model.eval()
    return model


def snap_to_int8_grid(w: torch.Tensor, axis: int = 0) -> torch.Tensor:
    """w rounded to its own int8 per-channel grid (same rule as quantize_weights.py)."""
    q, scale = quantize_per_channel(w.detach().numpy(), axis)
    shape = [1] * w.ndim
    shape[axis] = -1
    return torch.from_numpy(q.astype(np.float32) * scale.reshape(shape))


@torch.no_grad()
def snap_convs_to_int8_grid(model: nn.Module) -> None:
    """Generate the conv weights directly on the int8 per-output-channel grid.

    Why: an untrained network has no accuracy to protect, but it is very
    sensitive to weight perturbations; post-hoc int8 rounding of random
    weights changed the top-5 set of 27/32 test images (MobileNetV2). Snapping
    BEFORE BN calibration makes the calibrated network *be* the int8 network.
    Eval-mode BN folding (done by the ONNX exporter) only rescales each output
    channel, and per-channel symmetric quantisation is invariant to that, so
    the exported fp32 weights land back on the same integers: the int8 model
    matches the fp32 model up to float rounding. Consequence: int8-vs-fp32
    agreement in scripts/verify-models.mjs reflects this construction, not the
    quantisation loss a trained model would see.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.copy_(snap_to_int8_grid(m.weight, 0))


@torch.no_grad()
def calibrate_bn(model: nn.Module, images: torch.Tensor) -> None:
    """Set every BN shift to BN_BETA, then recompute the running stats as a
    cumulative average over `images` (batch statistics in train mode)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        with torch.no_grad():
            bn.bias.fill_(BN_BETA)
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average: every batch weighs the same
    model.eval()
    for bn in bns:
        bn.train()  # batch statistics in forward + running-stat update; dropout stays off
    for i in range(0, images.shape[0], CALIB_BATCH):
        model(images[i:i + CALIB_BATCH])
    model.eval()
    for bn in bns:
        bn.momentum = 0.1  # restore the default so the module looks stock


def classifier_linear(model: nn.Module) -> nn.Linear:
    head = model.classifier
    if isinstance(head, nn.Sequential):  # mobilenet_v2: Dropout, Linear
        head = [m for m in head if isinstance(m, nn.Linear)][-1]
    assert isinstance(head, nn.Linear)
    return head


@torch.no_grad()
def penultimate_features(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    head = classifier_linear(model)
    feats = []
    h = head.register_forward_hook(lambda m, inp, out: feats.append(inp[0].detach().clone()))
    for i in range(0, images.shape[0], CALIB_BATCH):
        model(images[i:i + CALIB_BATCH])
    h.remove()
    return torch.cat(feats)


def pixel_noise(x: torch.Tensor, seed: int, lsb: float = NOISE_LSB) -> torch.Tensor:
    """x + uniform noise of +-lsb/2 8-bit steps per pixel, in normalised units.

    Models what differs between two correct preprocessing implementations
    (resampler rounding, 8-bit quantisation): a tiny, white perturbation.
    """
    g = torch.Generator().manual_seed(seed)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return x + (torch.rand(x.shape, generator=g) - 0.5) * (lsb / 255) / std


@torch.no_grad()
def calibrate_head(model: nn.Module, images: torch.Tensor) -> dict:
    """Replace the stock N(0, 0.01) classifier by a deterministic, calibrated one.

    Problems with the stock head on an untrained network:
      (a) logits = W f are tiny (softmax ~0.001 for every class);
      (b) pooled post-ReLU features share a large common component, so every
          image gets nearly the same ranking;
      (c) many feature directions are dominated by amplified pixel-level noise,
          so a +-1 LSB change of the input reshuffles the top-5 (1000 classes
          with Gaussian-like logits have top-5 gaps of only ~3% of the logit std).
    The serving tests compare top-5 between two preprocessing implementations,
    so (c) matters as much as (a) and (b).

    Fix (no training, all deterministic, still one Linear layer):
      1. centre on mu = mean feature of the calibration images (bias = -W mu);
      2. find the HEAD_RANK feature directions with the best ratio of
         between-image variance to pixel-noise variance: PCA to HEAD_PCA dims,
         then a generalised eigenproblem (signal covariance vs covariance of
         feature changes under pixel_noise), directions scaled so the noise has
         unit variance;
      3. W = s * R @ P^T with R a seeded N(0,1) [1000 x HEAD_RANK] matrix (so
         each class is a random mix of the robust directions), and the scalar s
         chosen so the logit std across classes, averaged over calibration
         images, is TARGET_LOGIT_STD.
    """
    head = classifier_linear(model)
    f = penultimate_features(model, images).double()
    # Two independent noise draws per image -> feature changes caused by noise only.
    dn = torch.cat([penultimate_features(model, pixel_noise(images, SEED + 11 + k)).double() - f for k in range(2)])
    mu = f.mean(0)
    fc = f - mu
    U, _, _ = torch.linalg.svd(fc.T, full_matrices=False)
    pca = U[:, :HEAD_PCA]                                   # [d, m] top signal directions
    sig = pca.T @ (fc.T @ fc) @ pca / fc.shape[0]           # [m, m] signal covariance
    noi = pca.T @ (dn.T @ dn) @ pca / dn.shape[0]           # [m, m] noise covariance
    ln, vn = torch.linalg.eigh(noi)
    whiten = vn @ torch.diag(ln.clamp_min(1e-12).rsqrt())   # noise -> identity
    ls, vs = torch.linalg.eigh(whiten.T @ sig @ whiten)
    order = torch.argsort(ls, descending=True)[:HEAD_RANK]
    proj = pca @ whiten @ vs[:, order]                      # [d, k]
    gen = torch.Generator().manual_seed(SEED + 3)
    R = torch.randn(head.out_features, HEAD_RANK, generator=gen, dtype=torch.float64)
    W = R @ proj.T
    s = TARGET_LOGIT_STD / float((fc @ W.T).std(dim=1).mean())
    # Snap to the int8 grid first and centre with the snapped weights, so the
    # bias matches the weights that are actually shipped (mu is large: a bias
    # computed from unsnapped weights would be off by dW @ mu).
    Wq = snap_to_int8_grid((W * s).float(), 0)
    head.weight.copy_(Wq)
    head.bias.copy_((-(Wq.double() @ mu)).float())
    snr = ls[order].clamp_min(0).sqrt()
    return {"scale": s, "feature_dim": int(f.shape[1]),
            "snr_top": float(snr[0]), "snr_last": float(snr[-1])}


# --------------------------------------------------------------------------
# Stats
# --------------------------------------------------------------------------

def count_parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


@torch.no_grad()
def count_macs(model: nn.Module) -> int:
    """Multiply-accumulates for ONE 1x3x224x224 image.

    Counting rule: only Conv2d and Linear are counted (they are >99% of the
    work); BN, activations, pooling, adds and concats are ignored.
      Conv2d: out_elements * (in_channels / groups) * kh * kw
      Linear: in_features * out_features (per sample)
    Biases are not counted as MACs.
    """
    total = [0]

    def conv_hook(m: nn.Conv2d, inp, out):
        kh, kw = m.kernel_size
        total[0] += out.numel() * (m.in_channels // m.groups) * kh * kw

    def lin_hook(m: nn.Linear, inp, out):
        total[0] += (out.numel() // m.out_features) * m.in_features * m.out_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(lin_hook))
    model.eval()
    model(torch.zeros(1, 3, 224, 224))
    for h in hooks:
        h.remove()
    return int(total[0])


@torch.no_grad()
def logit_report(model: nn.Module, images: torch.Tensor) -> dict:
    """Sanity numbers showing the logits are not degenerate."""
    def run(x):
        return torch.cat([model(x[i:i + CALIB_BATCH]) for i in range(0, x.shape[0], CALIB_BATCH)])
    logits = run(images)
    noisy = run(pixel_noise(images, SEED + 500)).topk(5, dim=1).indices
    p = logits.softmax(1)
    top = logits.topk(6, dim=1)
    ps = p.topk(2, dim=1).values
    top5_sets = {tuple(sorted(r[:5].tolist())) for r in top.indices}
    top1 = {int(r[0]) for r in top.indices}
    gap56 = (top.values[:, 4] - top.values[:, 5])
    return {
        "n": int(images.shape[0]),
        "logit_std_mean": float(logits.std(1).mean()),
        "distinct_top1": len(top1),
        "distinct_top5_sets": len(top5_sets),
        "top1_prob_median": float(ps[:, 0].median()),
        "top1_top2_prob_margin_min": float((ps[:, 0] - ps[:, 1]).min()),
        "top1_top2_prob_margin_median": float((ps[:, 0] - ps[:, 1]).median()),
        "logit_gap_5_6_min": float(gap56.min()),
        "logit_gap_5_6_median": float(gap56.median()),
        # Same top-5 set after +-1.5 LSB pixel noise (a stand-in for a second,
        # slightly different preprocessing implementation).
        "top5_set_stable_under_noise": sum(
            set(a[:5].tolist()) == set(b.tolist()) for a, b in zip(top.indices, noisy)),
        "top5_order_stable_under_noise": sum(
            a[:5].tolist() == b.tolist() for a, b in zip(top.indices, noisy)),
    }


# --------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------

class WithFeatures(nn.Module):
    """Exports the pooled penultimate features as a second output ("features"),
    so the same single inference serves /v1/classify and /v1/embed. The forward
    is torchvision's own, spelled out to name the tensor before the classifier."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.model.features(x)
        if isinstance(self.model, torchvision.models.DenseNet):
            f = F.relu(f)
        f = torch.flatten(F.adaptive_avg_pool2d(f, (1, 1)), 1)
        return self.model.classifier(f), f


def feature_dim(model: nn.Module) -> int:
    return classifier_linear(model).in_features


def export_onnx(model: nn.Module) -> onnx.ModelProto:
    buf = io.BytesIO()
    dummy = torch.zeros(1, 3, 224, 224)
    torch.onnx.export(
        WithFeatures(model).eval(),
        dummy,
        buf,
        opset_version=OPSET,
        input_names=["input"],
        output_names=["logits", "features"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}, "features": {0: "batch"}},
        do_constant_folding=True,
        export_params=True,
        verbose=False,
    )
    m = onnx.load_from_string(buf.getvalue())
    pin_free_fields(m, PRODUCER, PRODUCER_VERSION)
    onnx.checker.check_model(m)
    return m


# --------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------

def manifest_for(model_id: str, spec: dict, seed: int, int8_path: Path, params: int, macs: int,
                 feat_dim: int) -> dict:
    sha = sha256_file(int8_path)
    return {
        "id": model_id,
        "version": "1.0.0-untrained",
        "name": spec["name"],
        "description": (
            f"{spec['architecture']} with deterministic, UNTRAINED weights generated by "
            "scripts/build_models.py (seeded init, BatchNorm statistics and classifier "
            "centring/scale calibrated on synthetic images). The ImageNet labels it returns "
            "are NOT meaningful predictions: this model exists to prove the serving pipeline "
            "(decode, preprocess, ONNX inference, softmax, labels) with a real architecture, "
            "real size and real latency."
        ),
        "architecture": spec["architecture"],
        "trained": False,
        "license": (
            "Architecture code: torchvision, BSD-3-Clause. Weights: generated by this "
            "repository's scripts/build_models.py (no pretrained weights used)."
        ),
        "source": (
            f"scripts/build_models.py, seed {seed} (torch.manual_seed; conv weights snapped to their "
            f"int8 per-channel grid), "
            f"torch {torch.__version__.split('+')[0]} / torchvision {torchvision.__version__.split('+')[0]}; "
            f"every BatchNorm shift set to {BN_BETA} and running stats recalibrated (train mode, "
            f"momentum=None cumulative average) over {CALIB_BN} deterministic synthetic 224x224 images "
            f"(smooth colour fields, gradients, blobs, stripes, plus {CALIB_NOISE_LSB:g}-LSB Gaussian "
            f"noise; ImageNet-normalised); classifier replaced by a seeded random rank-{HEAD_RANK} mix "
            f"of the most pixel-noise-robust, mean-centred penultimate feature directions (fitted on "
            f"{CALIB_HEAD} further synthetic images), scaled to a mean logit std of {TARGET_LOGIT_STD:g}; "
            f"ONNX opset {OPSET}; int8 weight-only quantisation by npm run models:quantize."
        ),
        "file": {
            "r2Key": f"models/{model_id}/{sha[:16]}/model.int8.onnx",
            "sha256": sha,
            "bytes": int8_path.stat().st_size,
        },
        "input": {"name": "input", "layout": "NCHW", "width": 224, "height": 224},
        "preprocess": {
            "resize": {"mode": "shortest-edge", "size": 256},
            "filter": "bilinear",
            "crop": {"width": 224, "height": 224},
            "rescale": 1 / 255,
            "mean": list(MEAN),
            "std": list(STD),
        },
        "output": {"name": "logits", "kind": "logits", "features": {"name": "features", "dim": feat_dim}},
        "labels": "imagenet-1k",
        "numClasses": 1000,
        "stats": {"parameters": params, "macs": macs},
        "quantization": {
            "scheme": "int8 weight-only (QDQ DequantizeLinear on weights)",
            "weights": "int8 symmetric per-output-channel",
            "activations": "fp32",
        },
    }


def build_one(model_id: str) -> dict:
    spec = SPECS[model_id]
    seed = SEED + spec["seed_offset"]
    model = build_model(spec, seed)
    params = count_parameters(model)
    macs = count_macs(model)

    # Disjoint deterministic image sets for BN calibration, head calibration
    # and the sanity report (seeds are fixed; they do not depend on the model).
    bn_imgs = synthetic_images(CALIB_BN, SEED + 100, noise_lsb=CALIB_NOISE_LSB)
    head_imgs = synthetic_images(CALIB_HEAD, SEED + 200)
    check_imgs = synthetic_images(32, SEED + 300)

    snap_convs_to_int8_grid(model)
    calibrate_bn(model, bn_imgs)
    before = logit_report(model, check_imgs)
    head = calibrate_head(model, head_imgs)
    after = logit_report(model, check_imgs)
    print(f"[{model_id}] params={params} macs={macs}", flush=True)
    print(f"[{model_id}] logits before head calibration: {json.dumps(before)}", flush=True)
    print(f"[{model_id}] head scale={head['scale']:.4f}; after: {json.dumps(after)}", flush=True)
    # Hard failure rather than shipping a degenerate model.
    assert after["distinct_top5_sets"] >= after["n"] // 2, "top-5 barely depends on the input"
    assert after["top1_prob_median"] > 0.01, "softmax is still flat"
    assert after["distinct_top1"] >= 4, "top-1 barely depends on the input"

    fp32 = export_onnx(model)
    fp32_path = BUILD_DIR / model_id / "model.fp32.onnx"
    write_bytes(fp32_path, fp32.SerializeToString())

    # The served int8 file comes from the project's quantisation tool (Node), the
    # same one users run on their own models; it also measures fp32-vs-int8
    # agreement on the photo set, which `npm run models:install --report` and
    # `npm run models:fidelity` put into the manifest.
    int8_path = MODELS_DIR / model_id / "model.int8.onnx"
    report = ROOT / "test-results" / "quantize" / f"{model_id}.json"
    subprocess.run(
        ["npx", "tsx", "scripts/models-quantize.ts", str(fp32_path), "--manifest",
         str(MODELS_DIR / model_id / "manifest.json"), "--format", "weight-only",
         "--calib", "test/fixtures/photos", "--eval", "test/fixtures/photoset",
         "--out", str(int8_path), "--report", str(report), "--bench-runs", "0"],
        check=True, cwd=ROOT)

    manifest = manifest_for(model_id, spec, seed, int8_path, params, macs, feature_dim(model))
    write_bytes(MODELS_DIR / model_id / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())
    write_bytes(MODELS_DIR / model_id / "model.int8.onnx.sha256",
                f"{manifest['file']['sha256']}  model.int8.onnx\n".encode())
    print(f"[{model_id}] fp32 {fp32_path.stat().st_size} B sha256 {sha256_file(fp32_path)}", flush=True)
    print(f"[{model_id}] int8 {manifest['file']['bytes']} B sha256 {manifest['file']['sha256']}", flush=True)
    return manifest


def main(argv: list[str]) -> None:
    setup_determinism()
    ids = argv or list(SPECS)
    for model_id in ids:
        if model_id not in SPECS:
            raise SystemExit(f"unknown model id {model_id!r}; known: {', '.join(SPECS)}")
        build_one(model_id)
    write_sha256sums(MODELS_DIR)


if __name__ == "__main__":
    main(sys.argv[1:])
