import { ManagedObjectError } from "../api/errors.js";

/**
 * The key types of scalable maps and sets: strings, numbers and bigints. Keys of different types
 * never collide: `1`, `"1"` and `1n` are three keys.
 *
 * Equality is a JS `Map`'s (SameValueZero): `NaN` is a key equal to itself, and `-0` is the same
 * key as `0` (it is stored, and returned by iteration, as `0`). Strings must be well-formed Unicode
 * (no lone surrogates: they have no UTF-8 form and would not survive storage), and bigints must
 * fit in 64 bits (signed or unsigned), like every stored bigint.
 */
export type ScalableKey = string | number | bigint;

const MIN_INT64 = -(2n ** 63n);
const MAX_UINT64 = 2n ** 64n - 1n;

/**
 * Checks that `key` can be a key of a scalable collection and returns it normalised (`-0` → `0`).
 * @throws {ManagedObjectError} naming what is wrong with the key.
 */
export function checkKey(key: unknown, what: string): ScalableKey {
  switch (typeof key) {
    case "string":
      if (!(key as string & { isWellFormed(): boolean }).isWellFormed()) {
        throw new ManagedObjectError(`${what}: a string key must be well-formed Unicode (no lone surrogates)`);
      }
      return key;
    case "number":
      return key === 0 ? 0 : key; // -0 === 0, so this folds -0 into 0
    case "bigint":
      if (key < MIN_INT64 || key > MAX_UINT64) throw new ManagedObjectError(`${what}: a bigint key must fit in 64 bits`);
      return key;
    default:
      throw new ManagedObjectError(`${what}: keys are strings, numbers or bigints, not ${key === null ? "null" : typeof key}`);
  }
}

/**
 * A string that identifies `key` and its type, the same in every process and on every machine:
 * the input of the hash and the tie-break of the iteration order. `String(number)` is the shortest
 * round-tripping form, so distinct numbers give distinct strings.
 */
export function canonicalKey(key: ScalableKey): string {
  switch (typeof key) {
    case "string":
      return "s" + key;
    case "number":
      return "n" + String(key === 0 ? 0 : key);
    default:
      return "b" + key.toString();
  }
}

/**
 * The 32-bit hash of a canonical key: FNV-1a over its UTF-16 code units, then MurmurHash3's
 * finaliser. FNV-1a alone spreads short keys poorly in its top bits, and the trie splits on the top
 * bits, so the finaliser's avalanche matters. The hash is part of the stored format (it chooses the
 * bucket a key lives in): it must never change.
 */
export function hashCanonical(canonical: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < canonical.length; i++) {
    const unit = canonical.charCodeAt(i);
    h = Math.imul(h ^ (unit & 0xff), 0x01000193);
    h = Math.imul(h ^ (unit >>> 8), 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The hash of `key` (see {@link hashCanonical}). */
export function hashKey(key: ScalableKey): number {
  return hashCanonical(canonicalKey(key));
}
