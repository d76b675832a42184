/**
 * Stripe webhook signatures (docs.stripe.com/webhooks#verify-official-libraries), verified with the
 * `stripe` SDK itself on the exact raw body: `Stripe-Signature: t=<unix>,v1=<hex hmac>[,v1=…]`, the
 * HMAC-SHA256 of `<t>.<raw body>` under the endpoint's signing secret, and `t` within the tolerance
 * of now (300 s, Stripe's default) in both directions: no older, so a captured request cannot be
 * replayed later, and no further in the future (the SDK checks only the age), so a request signed
 * ahead of time (a leaked secret, a sender's clock far off) does not stay valid for long.
 *
 * Rotation: the secret value may list several secrets, comma-separated (`whsec_new,whsec_old`); a
 * signature valid under any of them is accepted. Put the new secret first, remove the old one
 * when Stripe stops signing with it.
 */
import Stripe from 'stripe';
import { SIGNATURE_TOLERANCE_SECONDS } from '../../webhooks/policy.ts';

export type SignatureFailure = 'signature_missing' | 'signature_invalid' | 'timestamp_outside_tolerance';

export type SignatureCheck = { ok: true } | { ok: false; code: SignatureFailure; message: string };

/** `whsec_a, whsec_b` → ['whsec_a', 'whsec_b'] (blanks dropped). */
export function parseSecretList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** The `t` the SDK verifies the signature with: its parsing (items split on `,`, the last `t=` wins). */
function signedTimestamp(header: string): number {
  let t = -1;
  for (const item of header.split(',')) {
    const [k, v] = item.split('=');
    if (k === 't') t = parseInt(v ?? '', 10);
  }
  return t;
}

export interface VerifyOptions {
  toleranceSeconds?: number;
  /** Clock in epoch ms (tests). */
  nowMs?: number;
}

/**
 * Checks `header` against `raw` under each secret. Never throws for a bad signature: the caller
 * answers 400. The raw body is used as received (string or bytes), never re-serialized.
 */
export function verifyStripeSignature(
  raw: string | Buffer,
  header: string | undefined,
  secrets: string[],
  opts: VerifyOptions = {},
): SignatureCheck {
  if (!header || !/(^|,)\s*t=\d+/.test(header) || !/(^|,)\s*v1=/.test(header))
    return {
      ok: false,
      code: 'signature_missing',
      message: 'Missing or malformed Stripe-Signature header (expected t=…,v1=…).',
    };
  if (secrets.length === 0)
    return { ok: false, code: 'signature_invalid', message: 'No webhook signing secret is configured.' };
  const tolerance = opts.toleranceSeconds ?? SIGNATURE_TOLERANCE_SECONDS;
  const nowSeconds = Math.floor((opts.nowMs ?? Date.now()) / 1000);
  const timestamp = signedTimestamp(header);
  const sig = Stripe.webhooks.signature;
  if (!sig) throw new Error('stripe SDK: webhook signature helper missing');
  let stale = false;
  for (const secret of secrets) {
    // The signature must match first; only a matching signature is then checked for its age.
    try {
      sig.verifyHeader(raw, header, secret, 0);
    } catch {
      continue;
    }
    if (tolerance > 0 && timestamp - nowSeconds > tolerance) {
      stale = true;
      continue;
    }
    try {
      sig.verifyHeader(raw, header, secret, tolerance, undefined, opts.nowMs);
      return { ok: true };
    } catch {
      stale = true;
    }
  }
  return stale
    ? {
        ok: false,
        code: 'timestamp_outside_tolerance',
        message: `The signature's timestamp is more than ${tolerance} s away from now (too old, or in the future); the request is refused as a possible replay.`,
      }
    : {
        ok: false,
        code: 'signature_invalid',
        message: 'No signature matches the payload under the configured signing secret(s).',
      };
}
