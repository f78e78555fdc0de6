/**
 * The sticky canary's split: a row goes to the canary model when its key hashes below the
 * fraction. The hash is one a data team can reproduce in SQL: the first 8 bytes of
 * md5(salt || '\x1f' || key text), read big-endian as an unsigned integer u, and the row is in
 * the canary when u < T, T = floor(fraction × 2^64) (the manifest gives T in decimal). The key
 * text is the key columns' values as the output writes them, joined by '\x1f'; a null is ''.
 * The same keys are in the canary every day and on every re-run of a day.
 */
import { createHash } from 'node:crypto';
import type { BatchKeys } from '../formats/batch.js';

const SEPARATOR = '\x1f';

/** T for `fraction` (0 < fraction < 1), as a decimal string (the spec and the manifest keep it so: JSON has no 64-bit integers). */
export function canaryThreshold(fraction: number): string {
  // fraction × 2^64 is exact in a double (a power of two scales it); its floor is an integer.
  return BigInt(Math.floor(fraction * 2 ** 64)).toString();
}

/** The key text of row `r`, as the hash reads it. */
export function keyText(keys: BatchKeys, r: number, width: number): string {
  const parts: string[] = [];
  for (let k = 0; k < width; k++) parts.push(keys.isNull(r, k) ? '' : String(keys.value(r, k)));
  return parts.join(SEPARATOR);
}

/** Whether a key text is in the canary of `salt` at threshold `t` (canaryThreshold's, as a bigint). */
export function inCanary(text: string, salt: string, t: bigint): boolean {
  const digest = createHash('md5').update(`${salt}${SEPARATOR}${text}`, 'utf8').digest();
  return digest.readBigUInt64BE(0) < t;
}

/** For each of a batch's `rows` rows, whether it is in the canary. */
export function canaryRows(keys: BatchKeys, rows: number, width: number, salt: string, threshold: string): Uint8Array {
  const t = BigInt(threshold);
  const out = new Uint8Array(rows);
  for (let r = 0; r < rows; r++) out[r] = inCanary(keyText(keys, r, width), salt, t) ? 1 : 0;
  return out;
}
