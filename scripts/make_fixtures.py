#!/usr/bin/python3
"""Generates the decode fixtures and their reference decodes.

Run from the repo root:   /usr/bin/python3 scripts/make_fixtures.py

Writes
  test/fixtures/images/<name>.<ext>   small synthetic "natural-looking" images
  test/fixtures/images/<name>.rgb     reference decode by PIL (libjpeg-turbo,
                                      libpng/zlib, libwebp): raw RGB8, stored
                                      orientation (EXIF is NOT applied), alpha
                                      composited over white with
                                      out = round((a*c + (255-a)*255) / 255),
                                      16-bit samples reduced first with
                                      round(v*255/65535)
  test/fixtures/images/index.json
  test/fixtures/bad/*  +  index.json  (expected HTTP status + error code)

Deterministic: fixed seeds, no timestamps; re-running with the same PIL /
libjpeg / libwebp versions reproduces identical bytes.
"""
import io
import json
import os
import struct
import subprocess
import tempfile
import zlib

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, features

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "test", "fixtures", "images")
BAD = os.path.join(ROOT, "test", "fixtures", "bad")


# ------------------------------------------------------------ synthesis ----

def scene(w, h, seed):
    """Smooth gradients + a few soft-edged shapes + fine texture: enough
    structure to exercise chroma subsampling and DCT, different per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = x / max(w - 1, 1), y / max(h - 1, 1)
    phase = rng.uniform(0, 2 * np.pi, 3)
    freq = rng.uniform(1.0, 3.5, 3)
    img = np.stack([
        0.5 + 0.35 * np.sin(freq[c] * np.pi * (u * (c + 1) * 0.7 + v) + phase[c])
        for c in range(3)
    ], axis=-1)
    # Sky-like vertical gradient blended in.
    top, bottom = rng.uniform(0.2, 0.9, 3), rng.uniform(0.1, 0.7, 3)
    img = 0.6 * img + 0.4 * (top * (1 - v[..., None]) + bottom * v[..., None])
    base = Image.fromarray(np.clip(img * 255, 0, 255).astype(np.uint8), "RGB")

    draw = ImageDraw.Draw(base)
    for _ in range(int(rng.integers(3, 7))):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(0.05, 0.3) * w + 1, rng.uniform(0.05, 0.3) * h + 1
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=colour)
        else:
            pts = [(cx + rx * np.cos(t), cy + ry * np.sin(t))
                   for t in np.sort(rng.uniform(0, 2 * np.pi, 5))]
            draw.polygon(pts, fill=colour)
    base = base.filter(ImageFilter.GaussianBlur(radius=0.8))

    # Film-grain-like texture, blurred a little so it is not pure white noise.
    noise = rng.normal(0, 6, (h, w, 1)) + rng.normal(0, 3, (h, w, 3))
    out = np.asarray(base, dtype=np.float64) + noise
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def alpha_mask(w, h, seed):
    """Partial alpha: radial falloff + a fully transparent hole + opaque corner."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
    r = np.hypot((x - cx) / w, (y - cy) / h)
    a = np.clip(1.4 - 2.2 * r, 0, 1) * 255
    a[: h // 6, : w // 6] = 255
    a[(np.abs(x - w * 0.8) < w * 0.06) & (np.abs(y - h * 0.3) < h * 0.06)] = 0
    return np.rint(a).astype(np.uint8)


# ------------------------------------------------------------ reference ----

def composite(rgb, alpha):
    """out = round((a*c + (255-a)*255)/255), exact integer arithmetic (no ties)."""
    rgb = rgb.astype(np.int64)
    a = alpha.astype(np.int64)[..., None]
    return ((a * rgb + (255 - a) * 255) * 2 + 255) // 510


def reduce16(v):
    return (np.asarray(v, dtype=np.int64) * 255 * 2 + 65535) // (2 * 65535)


def reference_rgb(path):
    """Decodes with PIL (or libpng through ImageMagick for 16-bit colour,
    which PIL truncates) to the contract's RGB8 layout."""
    im = Image.open(path)
    im.load()
    if im.format == "PNG" and im.mode in ("I", "I;16", "I;16B"):
        g = reduce16(np.asarray(im))
        a = np.full(g.shape, 255)
        if "transparency" in im.info:
            a = np.where(np.asarray(im) == im.info["transparency"], 0, 255)
        return composite(np.stack([g, g, g], -1), a).astype(np.uint8)
    if im.format == "PNG" and png_ihdr(path)[2] == 16:
        return reference_rgb16_imagemagick(path, im.size)
    if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        rgba = np.asarray(im.convert("RGBA"))
        return composite(rgba[..., :3], rgba[..., 3]).astype(np.uint8)
    return np.asarray(im.convert("RGB")).astype(np.uint8)


def reference_rgb16_imagemagick(path, size):
    w, h = size
    raw = subprocess.run(["convert", path, "-depth", "16", "-endian", "MSB", "rgba:-"],
                         check=True, capture_output=True).stdout
    px = np.frombuffer(raw, dtype=">u2").reshape(h, w, 4)
    rgb8, a8 = reduce16(px[..., :3]), reduce16(px[..., 3])
    return composite(rgb8, a8).astype(np.uint8)


def png_ihdr(path):
    with open(path, "rb") as f:
        head = f.read(33)
    return struct.unpack(">IIBBBBB", head[16:29])


# -------------------------------------------------------------- writers ----

def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png16(path, samples, colour_type):
    """PIL cannot write 16-bit colour PNGs; build one by hand (filter 0 / 1 / 2
    rotated per row to exercise the unfilters)."""
    h, w = samples.shape[:2]
    be = samples.astype(">u2")
    bpp = be.shape[2] * 2
    rows = []
    prev = np.zeros(w * bpp, dtype=np.uint8)
    for r in range(h):
        line = np.frombuffer(be[r].tobytes(), dtype=np.uint8)
        ftype = r % 3
        if ftype == 0:
            filt = line
        elif ftype == 1:  # Sub
            left = np.concatenate([np.zeros(bpp, np.uint8), line[:-bpp]])
            filt = (line.astype(np.int16) - left) % 256
        else:  # Up
            filt = (line.astype(np.int16) - prev) % 256
        rows.append(bytes([ftype]) + filt.astype(np.uint8).tobytes())
        prev = line
    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + png_chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(data)


def tiff_orientation(n, big_endian):
    """Smallest valid TIFF block holding only IFD0/Orientation."""
    e = ">" if big_endian else "<"
    head = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    value = struct.pack(e + "H", n) + b"\0\0"
    return head + struct.pack(e + "H", 1) + struct.pack(e + "HHI", 0x0112, 3, 1) + value + struct.pack(e + "I", 0)


# Orientation n: how to turn the upright picture into the stored pixels
# (the inverse of what a viewer applies).
STORE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


# ------------------------------------------------------------- fixtures ----

entries = []


def add(name, ext, fmt, writer, orientation=1, notes=""):
    path = os.path.join(OUT, f"{name}.{ext}")
    writer(path)
    ref = reference_rgb(path)
    h, w = ref.shape[:2]
    with open(os.path.join(OUT, f"{name}.rgb"), "wb") as f:
        f.write(np.ascontiguousarray(ref).tobytes())
    entries.append({"name": name, "file": f"{name}.{ext}", "format": fmt, "width": w,
                    "height": h, "orientation": orientation, "lossy": fmt == "jpeg" or "lossy" in name,
                    "notes": notes})
    return ref


def save(im, **kw):
    return lambda p: im.save(p, **kw)


def check_lossless(ref, expected, name):
    assert np.array_equal(ref, expected), f"{name}: PIL decode differs from the source pixels"


def main():
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(BAD, exist_ok=True)
    for d in (OUT, BAD):
        for f in os.listdir(d):
            os.remove(os.path.join(d, f))

    rgb = lambda w, h, s: Image.fromarray(scene(w, h, s), "RGB")

    # JPEG ---------------------------------------------------------------
    add("jpeg_baseline_420", "jpg", "jpeg", save(rgb(320, 240, 1), quality=90),
        notes="baseline, 4:2:0 (PIL default), 320x240")
    add("jpeg_baseline_444_odd", "jpg", "jpeg", save(rgb(97, 61, 2), quality=92, subsampling=0),
        notes="baseline 4:4:4, odd size (partial MCUs)")
    add("jpeg_progressive", "jpg", "jpeg", save(rgb(120, 160, 3), quality=85, progressive=True),
        notes="progressive, 4:2:0, portrait")
    add("jpeg_progressive_422", "jpg", "jpeg",
        save(rgb(128, 128, 4), quality=88, progressive=True, subsampling=1, optimize=True),
        notes="progressive 4:2:2 with optimised Huffman tables")
    add("jpeg_gray", "jpg", "jpeg", save(rgb(128, 128, 5).convert("L"), quality=90),
        notes="single-component greyscale")
    add("jpeg_cmyk", "jpg", "jpeg", save(rgb(120, 90, 6).convert("CMYK"), quality=92),
        notes="4-component CMYK with Adobe APP14 (inverted, transform 0)")
    add("jpeg_thin_4x300", "jpg", "jpeg", save(rgb(4, 300, 7), quality=90),
        notes="4 px wide: less than one MCU per row")
    add("jpeg_1x1", "jpg", "jpeg", save(rgb(1, 1, 8), quality=90), notes="single pixel")
    add("jpeg_restart", "jpg", "jpeg", lambda p: cjpeg(rgb(96, 72, 9), p, ["-restart", "2", "-quality", "90"]),
        notes="libjpeg cjpeg with restart markers every 2 MCU rows")

    add("jpeg_rgb_adobe", "jpg", "jpeg", lambda p: cjpeg(rgb(64, 48, 12), p, ["-rgb", "-quality", "90"]),
        notes="3-component RGB JPEG (Adobe APP14 transform 0, cjpeg -rgb): no colour transform")
    add("jpeg_adobe_ycc", "jpg", "jpeg", lambda p: with_adobe_ycc(rgb(80, 60, 13), p),
        notes="YCbCr 4:2:0 with Adobe APP14 transform 1 (Photoshop style) and no JFIF")

    add("jpeg_420_odd", "jpg", "jpeg", save(rgb(83, 57, 14), quality=90),
        notes="4:2:0 with odd width and height (chroma edge replication)")
    add("jpeg_440", "jpg", "jpeg", lambda p: cjpeg(rgb(90, 70, 15), p, ["-sample", "1x2,1x1,1x1", "-quality", "90"]),
        notes="4:4:0 (h1v2) via cjpeg -sample 1x2")

    upright = rgb(64, 48, 10)
    for n in range(2, 9):
        stored = upright.transpose(STORE_FOR_ORIENTATION[n])
        big = n in (3, 6)  # cover both TIFF byte orders
        exif = b"Exif\0\0" + tiff_orientation(n, big)
        add(f"jpeg_exif_orient{n}", "jpg", "jpeg", save(stored, quality=90, exif=exif), orientation=n,
            notes=f"EXIF orientation {n} ({'big' if big else 'little'}-endian TIFF); stored pixels are the transposed upright picture")
    ex = Image.Exif()
    ex[0x0112] = 6
    add("jpeg_exif_pil_orient6", "jpg", "jpeg", save(rgb(48, 64, 11), quality=90, exif=ex.tobytes()),
        orientation=6, notes="Exif block written by PIL's Image.Exif")

    # PNG ----------------------------------------------------------------
    src = scene(128, 128, 20)
    check_lossless(add("png_rgb8", "png", "png", save(Image.fromarray(src)), notes="truecolour 8-bit"), src, "png_rgb8")

    src = scene(96, 128, 21)
    a = alpha_mask(96, 128, 21)
    ref = add("png_rgba8", "png", "png", save(Image.fromarray(np.dstack([src, a]), "RGBA")),
              notes="RGBA 8-bit, partial alpha incl. fully transparent hole")
    check_lossless(ref, composite(src, a), "png_rgba8")

    pal = rgb(97, 61, 22).quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    add("png_palette", "png", "png", save(pal), notes="indexed 8-bit, 64 colours, no tRNS")

    pal = rgb(128, 96, 23).quantize(colors=32, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    trns = bytes(int(v) for v in np.linspace(0, 255, 32))
    add("png_palette_trns", "png", "png", save(pal, transparency=trns),
        notes="indexed with per-entry tRNS alpha (0..255)")

    pal = rgb(50, 40, 24).quantize(colors=16, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    add("png_palette_4bit", "png", "png", save(pal, bits=4), notes="indexed 4-bit packed rows, odd row bytes")

    g = np.asarray(rgb(100, 50, 25).convert("L"))
    check_lossless(add("png_gray8", "png", "png", save(Image.fromarray(g, "L"))), np.dstack([g, g, g]), "png_gray8")

    g16 = np.clip(scene(96, 72, 26)[..., 0].astype(np.int64) * 257
                  + np.random.default_rng(26).integers(-200, 200, (72, 96)), 0, 65535).astype(np.uint16)
    add("png_gray16", "png", "png", save(Image.fromarray(g16, "I;16")), notes="greyscale 16-bit")

    la = Image.merge("LA", [Image.fromarray(np.asarray(rgb(64, 64, 27).convert("L"))), Image.fromarray(alpha_mask(64, 64, 27))])
    add("png_gray_alpha", "png", "png", save(la), notes="greyscale + alpha 8-bit")

    rng = np.random.default_rng(28)
    rgb16 = np.clip(scene(80, 60, 28).astype(np.int64) * 257 + rng.integers(-128, 128, (60, 80, 3)), 0, 65535)
    ref = add("png_rgb16", "png", "png", lambda p: write_png16(p, rgb16, 2),
              notes="truecolour 16-bit, hand-written (Sub/Up filters); reference via ImageMagick/libpng")
    check_lossless(ref, reduce16(rgb16), "png_rgb16")

    a16 = alpha_mask(64, 48, 29).astype(np.int64) * 257
    rgba16 = np.dstack([np.clip(scene(64, 48, 29).astype(np.int64) * 257 + 77, 0, 65535), a16])
    ref = add("png_rgba16", "png", "png", lambda p: write_png16(p, rgba16, 6),
              notes="RGBA 16-bit: samples and alpha reduced to 8 bits, then composited")
    check_lossless(ref, composite(reduce16(rgba16[..., :3]), reduce16(rgba16[..., 3])), "png_rgba16")

    src = scene(80, 60, 30)
    key = tuple(int(v) for v in src[10, 10])
    add("png_rgb_trns_key", "png", "png", save(Image.fromarray(src), transparency=key),
        notes=f"truecolour with tRNS colour key {key}: matching pixels are white")

    add("png_adam7", "png", "png",
        lambda p: imagemagick(rgb(75, 50, 31), p, ["-interlace", "PNG", "-define", "png:color-type=2"]),
        notes="Adam7 interlaced (ImageMagick)")
    add("png_1x1", "png", "png", save(rgb(1, 1, 32)), notes="single pixel")
    ex = Image.Exif()
    ex[0x0112] = 6
    add("png_exif_orient6", "png", "png", save(rgb(60, 80, 33), exif=ex.tobytes()), orientation=6,
        notes="eXIf chunk with orientation 6")

    # WebP ---------------------------------------------------------------
    assert features.check("webp"), "PIL built without WebP"
    add("webp_lossy", "webp", "webp", save(rgb(160, 120, 40), quality=80, method=4), notes="VP8 lossy, simple format")
    src = scene(128, 128, 41)
    a = alpha_mask(128, 128, 41)
    ref = add("webp_lossless_alpha", "webp", "webp",
              save(Image.fromarray(np.dstack([src, a]), "RGBA"), lossless=True, quality=100, exact=True),
              notes="VP8L lossless with alpha (exact RGB under transparent pixels)")
    check_lossless(ref, composite(src, a), "webp_lossless_alpha")
    add("webp_lossy_alpha", "webp", "webp",
        save(Image.fromarray(np.dstack([scene(150, 100, 42), alpha_mask(150, 100, 42)]), "RGBA"), quality=85),
        notes="VP8X + ALPH + VP8 (lossy colour, lossless alpha)")
    ex = Image.Exif()
    ex[0x0112] = 3
    add("webp_exif_orient3", "webp", "webp", save(rgb(97, 61, 43), quality=90, exif=ex.tobytes()), orientation=3,
        notes="VP8X with EXIF chunk, orientation 3")
    add("webp_lossless_1x1", "webp", "webp", save(rgb(1, 1, 44), lossless=True), notes="single pixel VP8L")

    # Byte-exact checks on what we wrote: probe expectations rely on these.
    with open(os.path.join(OUT, "webp_lossy.webp"), "rb") as f:
        assert f.read(16)[12:16] == b"VP8 "
    with open(os.path.join(OUT, "webp_lossless_alpha.webp"), "rb") as f:
        assert f.read(16)[12:16] == b"VP8L"
    with open(os.path.join(OUT, "webp_exif_orient3.webp"), "rb") as f:
        assert f.read(16)[12:16] == b"VP8X"

    with open(os.path.join(OUT, "index.json"), "w") as f:
        json.dump({"generator": "scripts/make_fixtures.py",
                   "pil": Image.__version__,
                   "reference": "PIL decode, RGB8 stored orientation, alpha over white, 16-bit rounded",
                   "images": entries}, f, indent=1)

    make_bad()


def cjpeg(im, path, args):
    with tempfile.NamedTemporaryFile(suffix=".ppm") as tmp:
        im.save(tmp.name)
        with open(path, "wb") as out:
            subprocess.run(["cjpeg", *args, tmp.name], check=True, stdout=out)


def with_adobe_ycc(im, path):
    """Re-wraps a PIL JPEG: drops JFIF APP0 and inserts APP14 'Adobe' with transform=1."""
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    assert data[2:4] == b"\xff\xe0"
    app0_len = struct.unpack(">H", data[4:6])[0]
    adobe = b"Adobe" + struct.pack(">HHHB", 100, 0, 0, 1)
    app14 = b"\xff\xee" + struct.pack(">H", len(adobe) + 2) + adobe
    with open(path, "wb") as f:
        f.write(data[:2] + app14 + data[4 + app0_len:])


def imagemagick(im, path, args):
    with tempfile.NamedTemporaryFile(suffix=".ppm") as tmp:
        im.save(tmp.name)
        subprocess.run(["convert", tmp.name, *args, "-strip", "-define", "png:exclude-chunks=date,time",
                        f"PNG:{path}"], check=True)


# ------------------------------------------------------------ bad files ----

def make_bad():
    bad = []

    def put(name, data, status, code, notes, names=None):
        with open(os.path.join(BAD, name), "wb") as f:
            f.write(data)
        entry = {"file": name, "status": status, "code": code, "notes": notes}
        if names:
            entry["message_includes"] = names
        bad.append(entry)

    def read(name):
        with open(os.path.join(OUT, name), "rb") as f:
            return f.read()

    jpg = read("jpeg_baseline_444_odd.jpg")
    png = read("png_rgb8.png")
    webp = read("webp_lossy.webp")

    put("truncated.jpg", jpg[: len(jpg) * 6 // 10], 422, "invalid_image", "JPEG cut at 60% (inside scan data)")
    put("truncated_header.jpg", jpg[:120], 422, "invalid_image", "JPEG cut inside the header segments")
    put("no_eoi.jpg", jpg[:-2], 422, "invalid_image", "complete scan but EOI marker removed (rule: EOI required)")
    prog = read("jpeg_progressive.jpg")
    put("truncated_progressive.jpg", prog[: len(prog) // 2], 422, "invalid_image", "progressive JPEG cut between/inside scans")
    cut = jpg[: len(jpg) * 7 // 10] + b"\xff\xd9"
    put("cut_with_eoi.jpg", cut, 422, "invalid_image", "scan data cut short, EOI appended")
    put("truncated.png", png[: len(png) * 6 // 10], 422, "invalid_image", "PNG cut at 60% (inside IDAT)")
    broken = bytearray(png)
    broken[29] ^= 0xFF
    put("bad_ihdr_crc.png", bytes(broken), 422, "invalid_image", "IHDR CRC flipped")
    broken = bytearray(png)
    broken[len(png) // 2] ^= 0x55
    put("bad_idat_crc.png", bytes(broken), 422, "invalid_image", "one byte inside IDAT flipped (CRC mismatch)")
    put("corrupt_signature.png", b"\x89PNG\r\r\n" + png[7:], 422, "invalid_image", "signature mangled by CRLF conversion")
    ihdr0 = struct.pack(">IIBBBBB", 0, 10, 8, 2, 0, 0, 0)
    put("zero_width.png", b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr0) + png_chunk(b"IEND", b""), 422,
        "invalid_image", "IHDR width 0")
    huge = struct.pack(">IIBBBBB", 50000, 50000, 8, 2, 0, 0, 0)
    put("huge_50000x50000.png", b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", huge)
        + png_chunk(b"IDAT", zlib.compress(b"")) + png_chunk(b"IEND", b""), 413, "image_too_large",
        "crafted header declaring 50000x50000, no real pixel data")
    sof = bytearray(jpg)
    i = sof.index(b"\xff\xc0")
    sof[i + 5:i + 9] = struct.pack(">HH", 60000, 60000)
    put("huge_60000x60000.jpg", bytes(sof), 413, "image_too_large", "JPEG SOF0 patched to 60000x60000")
    vp8x = bytearray(read("webp_exif_orient3.webp"))
    vp8x[24:30] = (16383).to_bytes(3, "little") * 2
    put("huge_16384x16384.webp", bytes(vp8x), 413, "image_too_large", "VP8X canvas patched to 16384x16384")
    put("truncated.webp", webp[: len(webp) // 2], 422, "invalid_image", "WebP cut in half (RIFF size > file)")
    fixed = bytearray(webp[: len(webp) // 2])
    fixed[4:8] = struct.pack("<I", len(fixed) - 8)
    fixed[16:20] = struct.pack("<I", len(fixed) - 20)
    put("truncated_consistent.webp", bytes(fixed), 422, "invalid_image",
        "WebP cut in half with RIFF/VP8 sizes patched to match (libwebp must reject)")

    rng = np.random.default_rng(99)
    noise = bytes(rng.integers(0, 256, 4096, dtype=np.uint8))
    noise = b"\x00\x7f" + noise[2:]  # pin the first bytes so no magic can match by chance
    put("random.bin", noise, 415, "unsupported_media_type", "4 KiB of seeded random bytes")
    put("empty.bin", b"", 415, "unsupported_media_type", "zero bytes")

    gif = io.BytesIO()
    Image.fromarray(scene(40, 30, 50)).convert("P").save(gif, "GIF")
    put("image.gif", gif.getvalue(), 415, "unsupported_media_type", "GIF87a/89a", "GIF")
    bmp = io.BytesIO()
    Image.fromarray(scene(20, 10, 51)).save(bmp, "BMP")
    put("image.bmp", bmp.getvalue(), 415, "unsupported_media_type", "Windows BMP", "BMP")
    tif = io.BytesIO()
    Image.fromarray(scene(20, 10, 52)).save(tif, "TIFF")
    put("image.tiff", tif.getvalue(), 415, "unsupported_media_type", "TIFF (little-endian)", "TIFF")
    put("image.svg", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        b'<rect width="10" height="10" fill="red"/></svg>\n', 415, "unsupported_media_type", "SVG text", "SVG")
    put("document.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n", 415,
        "unsupported_media_type", "PDF header", "PDF")
    put("image.heic", b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(64), 415, "unsupported_media_type",
        "ISO BMFF ftyp brand heic (header only)", "HEIC")
    put("image.avif", b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf" + bytes(64), 415, "unsupported_media_type",
        "ISO BMFF ftyp brand avif (header only)", "AVIF")
    put("cmyk_no_adobe.jpg", strip_adobe(read("jpeg_cmyk.jpg")), 415, "unsupported_media_type",
        "4-component JPEG without APP14: colour model unknown", "CMYK")

    with tempfile.TemporaryDirectory() as tmp:
        frames = []
        for k in range(2):
            fp = os.path.join(tmp, f"f{k}.png")
            Image.fromarray(scene(32, 32, 60 + k)).save(fp)
            frames.append(fp)
        out = os.path.join(tmp, "anim.webp")
        subprocess.run(["img2webp", "-loop", "0", "-d", "100", "-lossy", *frames, "-o", out],
                       check=True, capture_output=True)
        with open(out, "rb") as f:
            put("animated.webp", f.read(), 415, "unsupported_media_type", "two-frame animated WebP (img2webp)", "animated WebP")

    with open(os.path.join(BAD, "index.json"), "w") as f:
        json.dump({"generator": "scripts/make_fixtures.py", "files": bad}, f, indent=1)


def strip_adobe(data):
    """Removes the APP14 'Adobe' segment from a JPEG."""
    i = 2
    out = bytearray(data[:2])
    while i < len(data):
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        seg = data[i:i + 2 + length]
        if marker == 0xDA:
            out += data[i:]
            break
        if not (marker == 0xEE and seg[4:9] == b"Adobe"):
            out += seg
        i += 2 + length
    return bytes(out)


if __name__ == "__main__":
    main()
