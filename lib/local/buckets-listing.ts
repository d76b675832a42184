/**
 * Listing the objects of a local bucket (lib/local/buckets.ts), as S3's ListObjectsV2 and ListObjects
 * answer: keys in UTF-8 byte order, common prefixes under a delimiter, pages of `max-keys` continued by
 * an opaque token (V2) or a marker (V1), and optional URL encoding.
 */
import type { ServerResponse } from 'node:http';
import type { BucketFolders } from './buckets-store.ts';
import { S3Error, S3_NS, compareKeys, el, isoMs, sendXml } from './buckets-wire.ts';

export const LIST_PARAMS = new Set([
  'list-type',
  'prefix',
  'delimiter',
  'encoding-type',
  'max-keys',
  'continuation-token',
  'start-after',
  'fetch-owner',
  'marker',
  'x-id',
]);

function encodeToken(after: string, commonPrefix: boolean): string {
  return Buffer.from(JSON.stringify({ a: after, p: commonPrefix ? 1 : 0 }), 'utf8').toString('base64url');
}

function decodeToken(token: string): { after: string; commonPrefix: boolean } | undefined {
  try {
    const v = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { a?: unknown; p?: unknown };
    if (typeof v.a !== 'string') return undefined;
    return { after: v.a, commonPrefix: v.p === 1 };
  } catch {
    return undefined;
  }
}

/** ListObjectsV2 and ListObjects (prefix, delimiter, pagination, URL encoding) of one bucket. */
export async function listObjects(
  folders: BucketFolders,
  bucket: string,
  query: URLSearchParams,
  res: ServerResponse,
): Promise<void> {
  const v2 = query.get('list-type') === '2';
  const prefix = query.get('prefix') ?? '';
  const delimiter = query.get('delimiter') ?? '';
  const encode = query.get('encoding-type') === 'url';
  const maxKeysText = query.get('max-keys');
  let maxKeys = 1000;
  if (maxKeysText !== null) {
    if (!/^\d+$/.test(maxKeysText)) {
      throw new S3Error(400, 'InvalidArgument', 'Provided max-keys not an integer or within integer range', {
        ArgumentName: 'max-keys',
        ArgumentValue: maxKeysText,
      });
    }
    maxKeys = Math.min(1000, Number(maxKeysText));
  }
  const token = query.get('continuation-token');
  const startAfter = query.get('start-after') ?? '';
  const marker = query.get('marker') ?? '';

  let after = v2 ? startAfter : marker;
  let skipPrefix = '';
  if (v2 && token !== null) {
    const decoded = decodeToken(token);
    if (!decoded) {
      throw new S3Error(400, 'InvalidArgument', 'The continuation token provided is incorrect', {
        ArgumentName: 'continuation-token',
      });
    }
    after = decoded.after;
    skipPrefix = decoded.commonPrefix ? decoded.after : '';
  } else if (!v2 && delimiter && marker.endsWith(delimiter) && marker.startsWith(prefix)) {
    skipPrefix = marker;
  }

  const keys = await folders.allKeys(bucket, prefix);
  const contents: string[] = [];
  const prefixes: string[] = [];
  let last = '';
  let lastIsPrefix = false;
  let truncated = false;
  for (const key of keys) {
    if (after && compareKeys(key, after) <= 0) continue;
    if (skipPrefix && key.startsWith(skipPrefix)) continue;
    let commonPrefix: string | undefined;
    if (delimiter) {
      const i = key.indexOf(delimiter, prefix.length);
      if (i >= 0) commonPrefix = key.slice(0, i + delimiter.length);
    }
    if (commonPrefix !== undefined && lastIsPrefix && commonPrefix === last) continue;
    if (contents.length + prefixes.length >= maxKeys) {
      truncated = maxKeys > 0;
      break;
    }
    if (commonPrefix !== undefined) {
      prefixes.push(commonPrefix);
      last = commonPrefix;
      lastIsPrefix = true;
    } else {
      contents.push(key);
      last = key;
      lastIsPrefix = false;
    }
  }

  const enc = (s: string) => (encode ? encodeURIComponent(s).replace(/%2F/g, '/') : s);
  const items: string[] = [];
  for (const key of contents) {
    const info = await folders.readInfo(bucket, key);
    if (!info) continue; // deleted while listing
    items.push(
      '<Contents>' +
        el('Key', enc(key)) +
        el('LastModified', isoMs(info.lastModified)) +
        el('ETag', info.meta.etag) +
        (info.meta.checksum ? el('ChecksumAlgorithm', info.meta.checksum.algorithm.toUpperCase()) : '') +
        (info.meta.checksum ? el('ChecksumType', 'FULL_OBJECT') : '') +
        el('Size', info.meta.size) +
        (v2 ? '' : `<Owner>${el('ID', 'local')}${el('DisplayName', 'local')}</Owner>`) +
        el('StorageClass', 'STANDARD') +
        '</Contents>',
    );
  }
  const common = prefixes.map((p) => `<CommonPrefixes>${el('Prefix', enc(p))}</CommonPrefixes>`).join('');
  let head = el('Name', bucket) + el('Prefix', enc(prefix));
  if (v2) {
    if (token !== null) head += el('ContinuationToken', token);
    if (truncated) head += el('NextContinuationToken', encodeToken(last, lastIsPrefix));
    if (query.has('start-after')) head += el('StartAfter', enc(startAfter));
    head += el('KeyCount', items.length + prefixes.length);
  } else {
    head += el('Marker', enc(marker));
    if (truncated && delimiter) head += el('NextMarker', enc(last));
  }
  head += el('MaxKeys', maxKeys);
  if (delimiter) head += el('Delimiter', enc(delimiter));
  if (encode) head += el('EncodingType', 'url');
  head += el('IsTruncated', truncated);
  sendXml(
    res,
    200,
    `<ListBucketResult xmlns="${S3_NS}">${head}${items.join('')}${common}</ListBucketResult>`,
  );
}
