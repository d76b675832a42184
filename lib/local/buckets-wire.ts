/**
 * The S3 wire format of the local buckets (lib/local/buckets.ts): S3's error type and the errors the
 * operations answer, XML bodies (escaping, elements, documents), key order (UTF-8 bytes), `aws-chunked`
 * upload bodies and the checksums S3 accepts, conditional (ETag) and Range headers, and the standard
 * headers an object keeps.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { crc32 } from 'node:zlib';
import type { ObjectInfo, ObjectMeta } from './buckets-store.ts';

export const S3_NS = 'http://s3.amazonaws.com/doc/2006-03-01/';

export const STANDARD_HEADERS: [keyof ObjectMeta, string][] = [
  ['cacheControl', 'cache-control'],
  ['contentDisposition', 'content-disposition'],
  ['contentEncoding', 'content-encoding'],
  ['contentLanguage', 'content-language'],
  ['expires', 'expires'],
];

/** Headers GetObject lets the request set with `response-<header>=` query parameters. */
export const RESPONSE_OVERRIDES = [
  'content-type',
  'content-language',
  'expires',
  'cache-control',
  'content-disposition',
  'content-encoding',
];

export const CHECKSUM_ALGORITHMS = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'];

export class S3Error extends Error {
  readonly code: string;
  readonly status: number;
  readonly extra: Record<string, string>;
  constructor(status: number, code: string, message: string, extra: Record<string, string> = {}) {
    super(message);
    this.name = 'S3Error';
    this.status = status;
    this.code = code;
    this.extra = extra;
  }
}

const xmlEscape = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!,
  );

export const xmlUnescape = (s: string) =>
  s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);/g, (_m, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[e]!;
  });

export const el = (name: string, value: string | number | boolean) =>
  `<${name}>${xmlEscape(String(value))}</${name}>`;

const xmlDoc = (body: string) => `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;

/** S3 orders keys by their UTF-8 bytes. */
export const compareKeys = (a: string, b: string) =>
  Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

export const isoMs = (d: Date) => d.toISOString();

/**
 * Decodes an `aws-chunked` body (`<hex size>[;chunk-signature=…]\r\n<data>\r\n … 0\r\n[trailers]\r\n`),
 * as sent by the SDK for streaming uploads (signed, unsigned, with or without trailing checksums).
 * Yields the payload; the trailers (lower-cased names) are put into `trailers`.
 */
export async function* decodeAwsChunked(
  source: AsyncIterable<Buffer>,
  trailers: Record<string, string>,
): AsyncGenerator<Buffer> {
  let pending: Buffer = Buffer.alloc(0);
  let state: 'size' | 'data' | 'data-end' | 'trailer' | 'done' = 'size';
  let remaining = 0;
  const bad = (why: string) => new S3Error(400, 'IncompleteBody', `Malformed aws-chunked body: ${why}`);
  for await (const piece of source) {
    pending = pending.length ? Buffer.concat([pending, piece]) : piece;
    for (;;) {
      if (state === 'done') {
        pending = Buffer.alloc(0);
        break;
      }
      if (state === 'data') {
        if (pending.length === 0) break;
        const take = Math.min(remaining, pending.length);
        yield pending.subarray(0, take);
        pending = pending.subarray(take);
        remaining -= take;
        if (remaining === 0) state = 'data-end';
        continue;
      }
      const eol = pending.indexOf('\r\n');
      if (eol < 0) {
        if (pending.length > 64 * 1024) throw bad('line too long');
        break;
      }
      const line = pending.subarray(0, eol).toString('latin1');
      pending = pending.subarray(eol + 2);
      if (state === 'data-end') {
        if (line !== '') throw bad('missing CRLF after chunk data');
        state = 'size';
      } else if (state === 'size') {
        const sizeText = line.split(';', 1)[0]!.trim();
        if (!/^[0-9a-fA-F]+$/.test(sizeText)) throw bad('bad chunk size');
        remaining = parseInt(sizeText, 16);
        state = remaining === 0 ? 'trailer' : 'data';
      } else {
        if (line === '') {
          state = 'done';
          continue;
        }
        const colon = line.indexOf(':');
        if (colon > 0) trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
    }
  }
  // The SDK ends an unsigned body without trailers right after `0\r\n`; a missing last CRLF is fine.
  const end = state as string;
  if (end !== 'trailer' && end !== 'done') throw bad('body ended before its last chunk');
  if (end === 'trailer' && pending.length > 0) {
    const line = pending.toString('latin1');
    const colon = line.indexOf(':');
    if (colon > 0) trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
}

/** Incremental hash of one of the checksum algorithms S3 accepts (those node can compute). */
export function checksumHasher(algorithm: string): { update(b: Buffer): void; digest(): string } | undefined {
  if (algorithm === 'crc32') {
    let value = 0;
    return {
      update: (b) => {
        value = crc32(b, value);
      },
      digest: () => {
        const out = Buffer.alloc(4);
        out.writeUInt32BE(value >>> 0);
        return out.toString('base64');
      },
    };
  }
  if (algorithm === 'sha1' || algorithm === 'sha256') {
    const h = createHash(algorithm);
    return { update: (b) => h.update(b), digest: () => h.digest('base64') };
  }
  return undefined;
}

export const noSuchBucket = (bucket: string) =>
  new S3Error(404, 'NoSuchBucket', 'The specified bucket does not exist', { BucketName: bucket });

export const noSuchKey = (bucket: string, key: string) =>
  new S3Error(404, 'NoSuchKey', 'The specified key does not exist.', { Key: key, BucketName: bucket });

export const preconditionFailed = (condition: string) =>
  new S3Error(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', {
    Condition: condition,
  });

export const notImplemented = (what: string) =>
  new S3Error(
    501,
    'NotImplemented',
    `A header or operation you provided (${what}) is not implemented locally.`,
  );

export function etagMatches(header: string, info: ObjectInfo): boolean {
  return header
    .split(',')
    .map((s) => s.trim())
    .some((t) => t === '*' || t === info.meta.etag || `"${t}"` === info.meta.etag);
}

/** `[start, end]` inclusive, `undefined` for no (or an ignored) range, or `'unsatisfiable'`. */
export function parseRange(
  header: string | undefined,
  size: number,
): [number, number] | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return [Math.max(0, size - suffix), size - 1];
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size) return 'unsatisfiable';
  if (end < start) return undefined;
  return [start, end];
}

export function sendXml(res: ServerResponse, status: number, body: string): void {
  const buf = Buffer.from(xmlDoc(body), 'utf8');
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': buf.length });
  res.end(buf);
}

export async function drain(req: IncomingMessage): Promise<void> {
  if (req.complete) return;
  for await (const _ of req) {
    // discard
  }
}
