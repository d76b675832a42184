/**
 * Webhook signatures, Stripe's scheme: every delivery carries
 *
 *   Paystep-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
 *
 * The timestamp is signed with the body, so a captured delivery cannot be replayed later than the
 * tolerance. Several `v1=` entries may appear (one per valid secret); one match is enough.
 * Pure functions, no I/O: merchants can copy `verifyPaystepSignature` (docs/merchant-events.md).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'Paystep-Signature';

/** The hex HMAC-SHA256 of `<timestamp>.<body>` with the endpoint secret. */
export function computeSignature(payload: string | Buffer, secret: string, timestamp: number): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(payload).digest('hex');
}

/** The `Paystep-Signature` header value for a body sent at `timestamp` (unix seconds). */
export function signPayload(
  payload: string | Buffer,
  secret: string,
  timestamp = Math.floor(Date.now() / 1000),
): string {
  return `t=${timestamp},v1=${computeSignature(payload, secret, timestamp)}`;
}

/** `t` and every `v1` of a header; undefined if it is malformed. */
export function parseSignatureHeader(
  header: string,
): { timestamp: number; signatures: string[] } | undefined {
  let timestamp: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(',')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const k = part.slice(0, i).trim();
    const v = part.slice(i + 1).trim();
    if (k === 't' && /^\d{1,12}$/.test(v)) timestamp = Number(v);
    else if (k === 'v1' && /^[0-9a-f]{64}$/.test(v)) signatures.push(v);
  }
  if (timestamp === undefined || signatures.length === 0) return undefined;
  return { timestamp, signatures };
}

/**
 * True if `header` signs exactly `rawBody` (the bytes received, before any JSON parsing) with
 * `secret`, at a timestamp within `toleranceSeconds` of now (0 disables the time check).
 */
export function verifyPaystepSignature(
  rawBody: string | Buffer,
  header: string | undefined | null,
  secret: string,
  toleranceSeconds = 300,
  now = Math.floor(Date.now() / 1000),
): boolean {
  if (!header || !secret) return false;
  const parsed = parseSignatureHeader(header);
  if (!parsed) return false;
  if (toleranceSeconds > 0 && Math.abs(now - parsed.timestamp) > toleranceSeconds) return false;
  const expected = Buffer.from(computeSignature(rawBody, secret, parsed.timestamp), 'hex');
  return parsed.signatures.some((s) => timingSafeEqual(Buffer.from(s, 'hex'), expected));
}
