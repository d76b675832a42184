/**
 * The console's cookies and CSRF tokens (docs/console.md "Operators, sign-in and roles"): pure, no
 * I/O. The session cookie carries a random token (the store keeps only its hash); the CSRF token of
 * a session is the HMAC-SHA256 of the session's public id under the session's own secret, so it is
 * fixed for the session, unguessable without the secret, and checked in constant time.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'ps_session';
export const FLASH_COOKIE = 'ps_flash';
/** Double-submit token of the sign-in form (before there is a session to bind a CSRF token to). */
export const LOGIN_COOKIE = 'ps_login';

/** Cookies of a Cookie header (first value of a name wins; malformed pairs skipped). */
export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i < 1) continue;
    const name = part.slice(0, i).trim();
    if (name in out) continue;
    let value = part.slice(i + 1).trim();
    if (value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    try {
      out[name] = decodeURIComponent(value);
    } catch {
      // not percent-encoded properly: not one of ours
    }
  }
  return out;
}

export interface CookieOptions {
  /** The cookie's path: the console's (`/console`, or `/<stage>/console` on the default AWS endpoint). */
  path: string;
  /** Seconds; 0 deletes the cookie. */
  maxAge: number;
  /** Send only over HTTPS (AWS). */
  secure: boolean;
}

/** A Set-Cookie value: always HttpOnly and SameSite=Strict. */
export function serializeCookie(name: string, value: string, o: CookieOptions): string {
  return [
    `${name}=${encodeURIComponent(value)}`,
    'HttpOnly',
    'SameSite=Strict',
    `Path=${o.path}`,
    `Max-Age=${Math.max(0, Math.floor(o.maxAge))}`,
    ...(o.secure ? ['Secure'] : []),
  ].join('; ');
}

/** The CSRF token of a session: base64url HMAC-SHA256 of its id under its secret. */
export function csrfTokenFor(session: { id: string; csrf_secret: string }): string {
  return createHmac('sha256', Buffer.from(session.csrf_secret, 'hex')).update(session.id).digest('base64url');
}

/** Whether `given` is the session's CSRF token (constant time; anything else, or nothing, is false). */
export function csrfValid(session: { id: string; csrf_secret: string }, given: string | undefined): boolean {
  return sameSecret(csrfTokenFor(session), given);
}

/** Constant-time equality of two short secrets (false when either is missing). */
export function sameSecret(expected: string, given: string | undefined): boolean {
  if (!given || !expected) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}
