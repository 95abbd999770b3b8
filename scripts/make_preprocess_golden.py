#!/usr/bin/python3
"""Golden outputs for src/pipeline/preprocess.ts, computed with torchvision.

Run with Debian's python3 (torch 1.13 / torchvision 0.14):

    /usr/bin/python3 scripts/make_preprocess_golden.py

Writes test/fixtures/preprocess/{index.json,*.f32}. Nothing at test time needs
Python: the inputs are not stored at all but regenerated in JS from
(width, height, seed) with the integer hash in `make_image` below, which
test/node/preprocess.test.ts mirrors exactly (uint32 arithmetic only, so both
sides produce identical bytes; index.json records a checksum to prove it).

Outputs are float32 NCHW (1 x 3 x H x W without the batch dim). Storing every
output in full would be ~600 KB each, so per case we store:
  * every `stride`-th value of the flattened output (stride 17 is coprime with
    224 and 3, so the samples walk across every row, column and channel and
    an off-by-one crop or a wrong filter shows up in most of them: the images
    are partly noise, so a one-pixel shift changes values a lot);
  * per-channel sum / sum of squares / min / max over *all* values (float64),
    which catches errors in values the sampling skips;
  * for the cases listed in FULL, the complete output.
"""
import json
import os
import zlib

import numpy as np
import torch
import torchvision
import torchvision.transforms as T
from PIL import Image, ImageOps
from torchvision.transforms import InterpolationMode

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "preprocess")
STRIDE = 17
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]

M32 = 0xFFFFFFFF


def hash32(x):
    """lowbias32 (Chris Wellons); numpy uint32 multiplication wraps mod 2**32."""
    x = x.astype(np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x7FEB352D)
    x ^= x >> np.uint32(15)
    x *= np.uint32(0x846CA68B)
    x ^= x >> np.uint32(16)
    return x


def make_image(width, height, seed):
    """H x W x 3 uint8: sawtooth ramps (sharp edges + smooth regions) plus noise.

    byte(x, y, c) = (3 * ramp + noise) >> 2 with
      ramp  = (5x + 3y + 85c + 17 seed) & 255
      noise = hash32(((y*W + x)*3 + c) ^ (seed * 0x9E3779B9 mod 2**32)) & 255
    """
    y, x, c = np.meshgrid(
        np.arange(height, dtype=np.uint32),
        np.arange(width, dtype=np.uint32),
        np.arange(3, dtype=np.uint32),
        indexing="ij",
    )
    idx = (y * np.uint32(width) + x) * np.uint32(3) + c
    noise = hash32(idx ^ np.uint32((seed * 0x9E3779B9) & M32)) & np.uint32(255)
    ramp = (x * np.uint32(5) + y * np.uint32(3) + c * np.uint32(85) + np.uint32(17 * seed)) & np.uint32(255)
    return ((ramp * np.uint32(3) + noise) >> np.uint32(2)).astype(np.uint8)


def fnv1a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & M32
    return h


# EXIF orientation → PIL transpose, through PIL's own exif_transpose so the
# orientation semantics come from PIL, not from this script.
def apply_exif(arr, orientation):
    im = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = orientation
    im.info["exif"] = exif.tobytes()
    out = ImageOps.exif_transpose(im)
    return np.asarray(out).copy()


VARIANTS = {
    # name: (PreprocessSpec-like dict, torchvision resize/crop)
    "bilinear": {"resize": {"mode": "shortest-edge", "size": 256}, "filter": "bilinear", "crop": [224, 224]},
    "bicubic": {"resize": {"mode": "shortest-edge", "size": 256}, "filter": "bicubic", "crop": [224, 224]},
    "exact": {"resize": {"mode": "exact", "width": 224, "height": 224}, "filter": "bilinear", "crop": None},
    # Resize(200) then CenterCrop(224): exercises torchvision's zero padding.
    "pad": {"resize": {"mode": "shortest-edge", "size": 200}, "filter": "bilinear", "crop": [224, 224]},
    # Non-square exact resize with a crop along one axis only and bicubic.
    "exact-bicubic-crop": {
        "resize": {"mode": "exact", "width": 240, "height": 180},
        "filter": "bicubic",
        "crop": [200, 192],  # width, height: crops x, pads y
    },
}

SIZES = [(640, 480), (480, 640), (333, 500), (257, 256), (1, 1), (4, 300), (300, 4), (97, 61), (224, 224), (1200, 800)]

CASES = []  # (name, w, h, seed, variant, orientation)
for i, (w, h) in enumerate(SIZES):
    for v in ("bilinear", "bicubic", "exact"):
        CASES.append((f"{w}x{h}-{v}", w, h, i + 1, v, 1))
for i, (w, h) in enumerate([(640, 480), (97, 61), (333, 500)]):
    CASES.append((f"{w}x{h}-pad", w, h, 100 + i, "pad", 1))
for i, (w, h) in enumerate([(301, 203), (97, 61)]):
    CASES.append((f"{w}x{h}-exact-bicubic-crop", w, h, 200 + i, "exact-bicubic-crop", 1))
# Long side 256 * 640 / 427 = 383.7: int() truncates to 383 where round() would give 384.
CASES.append(("640x427-bilinear", 640, 427, 400, "bilinear", 1))
# All EXIF orientations on a small odd, non-square image; torchvision sees the
# PIL-transposed image, the worker gets the stored one plus the tag.
for o in range(1, 9):
    CASES.append((f"97x61-orient{o}-bilinear", 97, 61, 300, "bilinear", o))
CASES.append(("61x97-orient6-bicubic", 61, 97, 301, "bicubic", 6))

FULL = {"640x480-bilinear"}


def torchvision_pipeline(variant):
    v = VARIANTS[variant]
    interp = InterpolationMode.BICUBIC if v["filter"] == "bicubic" else InterpolationMode.BILINEAR
    r = v["resize"]
    # torchvision 0.14: Resize(size, interpolation, max_size=None, antialias=None);
    # antialias must be passed explicitly or tensors are resized without it.
    size = r["size"] if r["mode"] == "shortest-edge" else (r["height"], r["width"])
    steps = [T.ToTensor(), T.Resize(size, interpolation=interp, antialias=True)]
    if v["crop"] is not None:
        cw, ch = v["crop"]
        steps.append(T.CenterCrop((ch, cw)))
    steps.append(T.Normalize(MEAN, STD))
    return T.Compose(steps)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for f in os.listdir(OUT_DIR):
        if f.endswith(".f32") or f == "index.json":
            os.remove(os.path.join(OUT_DIR, f))
    cases = []
    for name, w, h, seed, variant, orientation in CASES:
        stored = make_image(w, h, seed)
        displayed = apply_exif(stored, orientation) if orientation != 1 else stored
        with torch.no_grad():
            out = torchvision_pipeline(variant)(displayed)
        assert out.dtype == torch.float32 and out.shape[0] == 3
        flat = out.contiguous().numpy().reshape(-1).astype("<f4")
        v = VARIANTS[variant]
        sample_file = f"{name}.sample.f32"
        flat[::STRIDE].tofile(os.path.join(OUT_DIR, sample_file))
        full_file = None
        if name in FULL:
            full_file = f"{name}.full.f32"
            flat.tofile(os.path.join(OUT_DIR, full_file))
        chans = out.double().reshape(3, -1)
        spec = {
            "resize": v["resize"],
            "filter": v["filter"],
            "rescale": 1 / 255,
            "mean": MEAN,
            "std": STD,
        }
        if v["crop"] is not None:
            spec["crop"] = {"width": v["crop"][0], "height": v["crop"][1]}
        cases.append(
            {
                "name": name,
                "image": {"width": w, "height": h, "seed": seed, "orientation": orientation,
                          "fnv1a": fnv1a(stored.tobytes())},
                "variant": variant,
                "spec": spec,
                "output": {"width": int(out.shape[2]), "height": int(out.shape[1])},
                "sampleFile": sample_file,
                "fullFile": full_file,
                "stats": {
                    "sum": chans.sum(1).tolist(),
                    "sumSq": (chans * chans).sum(1).tolist(),
                    "min": chans.min(1).values.tolist(),
                    "max": chans.max(1).values.tolist(),
                },
            }
        )
    index = {
        "generator": "scripts/make_preprocess_golden.py",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "layout": "NCHW float32 little-endian, batch dim omitted",
        "stride": STRIDE,
        "cases": cases,
    }
    with open(os.path.join(OUT_DIR, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT_DIR, f)) for f in os.listdir(OUT_DIR))
    print(f"{len(cases)} cases, {total / 1e6:.2f} MB in {OUT_DIR}")


if __name__ == "__main__":
    main()
