#!/bin/sh
# Reference outputs for src/pipeline/codecs/jpeg-lean.ts's DCT-domain scaling:
# libjpeg-turbo's own scaled decoder (djpeg -scale 1/d, ISLOW IDCT, default
# fancy upsampling) on committed fixtures. Tests read these files and never
# call djpeg (CI machines do not have it).
#
# Run from the repo root: sh scripts/make_jpeg_scale_refs.sh
# Output: test/fixtures/jpeg-scaled/<fixture>_1_<d>.ppm (P6, or P5 for greyscale)
set -eu
SRC=test/fixtures/images
OUT=test/fixtures/jpeg-scaled
mkdir -p "$OUT"
NAMES="jpeg_baseline_420 jpeg_420_odd jpeg_baseline_444_odd jpeg_440 jpeg_progressive jpeg_progressive_422
jpeg_gray jpeg_cmyk jpeg_restart jpeg_rgb_adobe jpeg_adobe_ycc jpeg_thin_4x300"
for name in $NAMES; do
  for d in 2 4 8; do
    djpeg -dct int -scale "1/$d" -ppm -outfile "$OUT/${name}_1_${d}.ppm" "$SRC/$name.jpg"
  done
done
djpeg -version 2>&1 | head -1 > "$OUT/GENERATOR.txt"
echo "made by scripts/make_jpeg_scale_refs.sh: djpeg -dct int -scale 1/d -ppm" >> "$OUT/GENERATOR.txt"
