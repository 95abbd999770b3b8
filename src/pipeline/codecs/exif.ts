/**
 * Minimal Exif reader: the only tag the pipeline needs is Orientation (0x0112)
 * in IFD0. Exif is metadata, so a malformed block must never fail the image:
 * every problem simply yields orientation 1 ("as stored").
 *
 * Input is a TIFF structure ("II*\0" little-endian or "MM\0*" big-endian). The
 * JPEG APP1 payload carries an "Exif\0\0" prefix; PNG eXIf and WebP EXIF chunks
 * should not, but some writers add it anyway, so an optional prefix is skipped.
 */

const ORIENTATION_TAG = 0x0112;
const TYPE_SHORT = 3;
const TYPE_LONG = 4;
/** IFD0 of a real photo has a few dozen entries; cap the walk for hostile counts. */
const MAX_IFD_ENTRIES = 1024;

const EXIF_PREFIX = [0x45, 0x78, 0x69, 0x66, 0x00, 0x00]; // "Exif\0\0"

function hasPrefix(bytes: Uint8Array, prefix: readonly number[]): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

/** Returns the EXIF orientation 1..8, or 1 when absent, out of range or unreadable. */
export function readExifOrientation(block: Uint8Array): number {
  const tiff = hasPrefix(block, EXIF_PREFIX) ? block.subarray(EXIF_PREFIX.length) : block;
  if (tiff.length < 8) return 1;

  let little: boolean;
  if (tiff[0] === 0x49 && tiff[1] === 0x49) little = true;
  else if (tiff[0] === 0x4d && tiff[1] === 0x4d) little = false;
  else return 1;

  const view = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  const len = tiff.length;
  // All reads go through these guards so no offset can escape the block.
  const u16 = (off: number): number | undefined =>
    off >= 0 && off + 2 <= len ? view.getUint16(off, little) : undefined;
  const u32 = (off: number): number | undefined =>
    off >= 0 && off + 4 <= len ? view.getUint32(off, little) : undefined;

  if (u16(2) !== 42) return 1;
  const ifd0 = u32(4);
  if (ifd0 === undefined) return 1;
  const count = u16(ifd0);
  if (count === undefined) return 1;

  const entries = Math.min(count, MAX_IFD_ENTRIES);
  for (let i = 0; i < entries; i++) {
    const entry = ifd0 + 2 + i * 12;
    const tag = u16(entry);
    if (tag === undefined) return 1; // IFD runs off the end of the block
    if (tag !== ORIENTATION_TAG) continue;
    const type = u16(entry + 2);
    // Values of 4 bytes or less are stored inline, left-justified in the
    // value field, so a SHORT sits in its first two bytes in either byte order.
    let value: number | undefined;
    if (type === TYPE_SHORT) value = u16(entry + 8);
    else if (type === TYPE_LONG) value = u32(entry + 8);
    if (value !== undefined && value >= 1 && value <= 8) return value;
    return 1;
  }
  return 1;
}
