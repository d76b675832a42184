/** Prefixed, unguessable ids (docs/api.md, "Conventions"): 128 bits of randomness in base62. */
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export function randomBase62(length: number): string {
  // Rejection sampling keeps every character uniformly likely.
  let out = '';
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < 248) out += ALPHABET[b % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

export type IdPrefix =
  'pay' | 're' | 'dp' | 'rv' | 'evt' | 'mch' | 'po' | 'rc' | 'rpt' | 'png' | 'we' | 'inc' | 'op' | 'aud';

export const newId = (prefix: IdPrefix) => `${prefix}_${randomBase62(22)}`;
