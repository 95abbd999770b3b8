"""Builds the held-out set the int8 models are judged on (not committed: 16 MB).

The quantised models are calibrated on test/fixtures/photoset. Agreement with
fp32 is then measured on images the calibration never saw: 400 random crops of
the public-domain / CC0 photographs Debian ships (skimage's data folder and
matplotlib's sample data), flipped, rotated, re-lit, blurred and re-encoded at
sizes from 96 to 1024 px (80 % JPEG at quality 55-95, 20 % PNG). Deterministic
(fixed seed, PIL only). Build-time only: nothing at run or test time needs it.

Run: /usr/bin/python3 scripts/make_heldout.py [out dir, default build/heldout]
Then e.g. npm run models:quantize -- ... --calib test/fixtures/photoset --eval build/heldout
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import skimage.data
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "heldout"
SK = Path(os.path.dirname(skimage.data.__file__))
SOURCES = [SK / s for s in [
    "astronaut.png", "chelsea.png", "coffee.png", "hubble_deep_field.jpg", "ihc.png", "motorcycle_left.png",
    "motorcycle_right.png", "retina.jpg", "rocket.jpg", "color.png", "camera.png", "coins.png", "moon.png",
    "grass.png", "gravel.png", "cell.png", "clock_motion.png", "brick.png", "horse.png", "page.png", "text.png",
    "microaneurysms.png", "phantom.png",
]] + [Path("/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg")]
COUNT = 400
SEED = 7


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    images = [Image.open(p).convert("RGB") for p in SOURCES]
    rng = random.Random(SEED)
    for i in range(COUNT):
        im = rng.choice(images)
        w, h = im.size
        s = rng.uniform(0.25, 1.0)
        cw = max(16, int(w * s * rng.uniform(0.7, 1.0)))
        ch = max(16, int(h * s * rng.uniform(0.7, 1.0)))
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        c = im.crop((x, y, x + cw, y + ch))
        if rng.random() < 0.5:
            c = ImageOps.mirror(c)
        if rng.random() < 0.2:
            c = c.rotate(rng.choice([90, 180, 270]), expand=True)
        c = ImageEnhance.Brightness(c).enhance(rng.uniform(0.6, 1.4))
        c = ImageEnhance.Contrast(c).enhance(rng.uniform(0.6, 1.4))
        c = ImageEnhance.Color(c).enhance(rng.uniform(0.3, 1.6))
        if rng.random() < 0.2:
            c = c.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2)))
        long_side = rng.choice([96, 160, 224, 300, 400, 512, 640, 800, 1024])
        f = long_side / max(c.size)
        c = c.resize((max(8, round(c.size[0] * f)), max(8, round(c.size[1] * f))), Image.BICUBIC)
        if rng.random() < 0.8:
            c.save(OUT / f"h{i:03d}.jpg", quality=rng.randint(55, 95))
        else:
            c.save(OUT / f"h{i:03d}.png")
    print(f"{COUNT} images in {OUT}")


if __name__ == "__main__":
    main()
