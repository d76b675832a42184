/**
 * Bounds and guards every request passes before a handler hashes, validates or stores it
 * (docs/api.md, "Limits"). Pure: no I/O. Each refusal is an ApiError in the API's error shape.
 *
 * - body: at most MAX_BODY_BYTES, UTF-8 JSON (`Content-Type: application/json`, no other
 *   charset), nested at most MAX_JSON_DEPTH levels (checked on the raw text before JSON.parse,
 *   then again on the parsed value, both without recursion);
 * - anywhere in a body: no `__proto__`, `constructor` or `prototype` key, keys of at most
 *   MAX_KEY_LENGTH characters, well-formed Unicode (no unpaired surrogates), and no card number
 *   (lambdas/domain/pan.ts) in a key or a value;
 * - query strings: no card numbers, values of at most MAX_QUERY_VALUE_LENGTH characters;
 * - path ids: the shape of the id they name (`pay_…`, `re_…`) before any store call (`pathId`).
 */
import { containsCardNumber, identifierHoldsCardNumber, isCardNumber } from '../domain/pan.ts';
import { ApiError, invalidRequest } from './errors.ts';

export const MAX_BODY_BYTES = 1 << 20;
/** Objects and arrays nested deeper than this are refused (the API's bodies need 3). */
export const MAX_JSON_DEPTH = 20;
export const MAX_KEY_LENGTH = 255;
export const MAX_QUERY_VALUE_LENGTH = 1000;
/** Longest id accepted in a path (ids are a prefix and 22 base62 characters). */
export const MAX_ID_LENGTH = 64;

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** The charset parameter of a Content-Type, lowercased and unquoted; undefined if absent. */
export function contentTypeCharset(contentType: string): string | undefined {
  for (const part of contentType.split(';').slice(1)) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    if (part.slice(0, i).trim().toLowerCase() !== 'charset') continue;
    return part
      .slice(i + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1')
      .toLowerCase();
  }
  return undefined;
}

/** Refuses a Content-Type that is not JSON in UTF-8. */
export function checkJsonContentType(contentType: string): void {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json')
    throw invalidRequest(
      'unsupported_content_type',
      'Send request bodies as JSON with Content-Type: application/json.',
    );
  const charset = contentTypeCharset(contentType);
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8')
    throw invalidRequest(
      'unsupported_charset',
      'Request bodies must be UTF-8: send Content-Type: application/json (or with charset=utf-8).',
    );
}

/**
 * The deepest nesting of objects and arrays in a JSON text (strings skipped), without parsing it;
 * stops counting once past `limit`. Malformed text yields some number: JSON.parse refuses it next.
 */
export function jsonTextDepth(text: string, limit = MAX_JSON_DEPTH): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
}

const tooDeep = () =>
  invalidRequest(
    'body_too_deep',
    `Request body is nested more than ${MAX_JSON_DEPTH} levels deep (objects and arrays).`,
  );

const pathOf = (path: readonly (string | number)[]) => path.join('.');

/** `what` says where (`metadata.note`, `a key in metadata`); `param` never holds the number itself. */
export const cardNumberRefused = (what: string, param: string | undefined) =>
  invalidRequest(
    'card_number_refused',
    `${what} contains what looks like a card number (a Luhn-valid 13–19 digit sequence). paystep never ` +
      'accepts or stores card numbers: collect card details with the processor (e.g. Stripe Elements) and ' +
      "send the processor's payment method token (pm_…) as payment_method; keep card numbers out of every other field.",
    param,
  );

/** Checks text described by `what` (a param name, or `a key in metadata`), named by `param`. */
function checkText(text: string, what: string, param: string | undefined = what): void {
  if (!text.isWellFormed())
    throw invalidRequest(
      'parameter_invalid',
      `Invalid ${what}: text must be valid Unicode (it contains an unpaired surrogate).`,
      param,
    );
  if (containsCardNumber(text)) throw cardNumberRefused(what, param);
}

/**
 * Walks a parsed body without recursion: depth, forbidden and oversized keys, malformed text and
 * card numbers in keys and values. Throws the first problem in document order.
 */
export function checkBody(body: unknown): void {
  const stack: { value: unknown; path: (string | number)[] }[] = [{ value: body, path: [] }];
  while (stack.length) {
    const { value, path } = stack.pop()!;
    if (typeof value === 'string') {
      checkText(value, pathOf(path) || 'body');
      continue;
    }
    if (typeof value === 'number') {
      if (Number.isInteger(value) && isCardNumber(String(Math.abs(value))))
        throw cardNumberRefused(pathOf(path) || 'the body', pathOf(path) || undefined);
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (path.length >= MAX_JSON_DEPTH) throw tooDeep();
    const children: { value: unknown; path: (string | number)[] }[] = [];
    if (Array.isArray(value)) value.forEach((v, i) => children.push({ value: v, path: [...path, i] }));
    else
      for (const k of Object.keys(value)) {
        if (FORBIDDEN_KEYS.has(k))
          throw invalidRequest(
            'parameter_invalid',
            `Invalid key ${k} at ${pathOf(path) || 'the top level'}: the keys __proto__, constructor and prototype are not accepted anywhere in a request body.`,
            pathOf([...path, k]),
          );
        if (k.length > MAX_KEY_LENGTH)
          throw invalidRequest(
            'parameter_invalid',
            `Invalid key at ${pathOf(path) || 'the top level'}: keys must be at most ${MAX_KEY_LENGTH} characters.`,
            pathOf(path) || undefined,
          );
        checkText(k, path.length ? `a key in ${pathOf(path)}` : 'a top-level key', pathOf(path) || undefined);
        children.push({ value: (value as Record<string, unknown>)[k], path: [...path, k] });
      }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
  }
}

/** Parses a raw JSON body within the limits above (size is the caller's: it knows the bytes). */
export function parseJsonBody(raw: string): unknown {
  if (jsonTextDepth(raw) > MAX_JSON_DEPTH) throw tooDeep();
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    throw invalidRequest('invalid_json', 'Request body is not valid JSON.');
  }
  checkBody(body);
  return body;
}

/** Query parameters: bounded, well-formed, no card numbers. */
export function checkQuery(query: Record<string, string>): void {
  for (const [k, v] of Object.entries(query)) {
    const param = k.length > MAX_KEY_LENGTH ? undefined : k;
    if (k.length > MAX_KEY_LENGTH || v.length > MAX_QUERY_VALUE_LENGTH)
      throw invalidRequest(
        'parameter_invalid',
        `Query parameters must have names of at most ${MAX_KEY_LENGTH} and values of at most ${MAX_QUERY_VALUE_LENGTH} characters.`,
        param,
      );
    checkText(k, 'a query parameter name', undefined);
    checkText(v, k);
  }
}

/** Objects a path id can name, with their id prefixes (lambdas/shared/ids.ts). */
export const ID_PREFIXES = {
  payment: 'pay',
  refund: 're',
  dispute: 'dp',
  review: 'rv',
  event: 'evt',
  'webhook endpoint': 'we',
  ping: 'png',
  customer: 'cus',
  plan: 'plan',
  subscription: 'sub',
  invoice: 'in',
  incident: 'inc',
} as const;

export type IdKind = keyof typeof ID_PREFIXES;

const ID_BODY = /^[0-9A-Za-z]+$/;

/** Whether `id` has the shape of an id of `kind` (prefix, base62, bounded length). */
export function isIdOf(kind: IdKind, id: string): boolean {
  const prefix = `${ID_PREFIXES[kind]}_`;
  return id.length <= MAX_ID_LENGTH && id.startsWith(prefix) && ID_BODY.test(id.slice(prefix.length));
}

/**
 * Shape of any path parameter, whatever the route (the gateway passes malformed encodings as is).
 * One holding a card number (`pay_4242…`) is malformed too: refused as not found, never echoed.
 */
export const isPlausiblePathParam = (v: string) =>
  v.length <= MAX_ID_LENGTH && /^[0-9A-Za-z_-]+$/.test(v) && !identifierHoldsCardNumber(v);

/** 404 for an id that cannot name an object of `kind` (never echoed: it may be anything). */
export const malformedId = (kind: IdKind) =>
  new ApiError(
    404,
    'not_found',
    'resource_missing',
    `No such ${kind}: the id in the path is not a ${kind} id (${ID_PREFIXES[kind]}_…).`,
    'id',
  );

/**
 * The `{id}` path parameter of a request, checked against the shape of ids of `kind` before any
 * store call: a malformed id is a 404 `resource_missing`, as an unknown one is.
 */
export function pathId(req: { pathParams: Record<string, string> }, kind: IdKind, name = 'id'): string {
  const id = req.pathParams[name] ?? '';
  if (!isIdOf(kind, id)) throw malformedId(kind);
  return id;
}
