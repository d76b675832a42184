import {
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  paginateListObjectsV2,
  type ListObjectsV2CommandInput,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { LocalBuckets } from '../../lib/local/buckets.ts';

const md5 = (b: Buffer | string) => createHash('md5').update(b).digest('hex');

let dataDir: string;
let buckets: LocalBuckets;
let s3: S3Client;
let endpoint: string;
/** Request lines and headers the SDK actually sent, to prove which code path a test exercised. */
let sent: { method: string; path: string; headers: Record<string, string> }[];

beforeEach(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-buckets-'));
  buckets = new LocalBuckets({ dataDir, buckets: ['reports', 'other'] });
  endpoint = await buckets.start();
  s3 = new S3Client({
    endpoint,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  sent = [];
  s3.middlewareStack.add(
    (next) => async (args) => {
      const req = args.request as { method: string; path: string; headers: Record<string, string> };
      sent.push({ method: req.method, path: req.path, headers: { ...req.headers } });
      return next(args);
    },
    { step: 'finalizeRequest', name: 'recordRequests' },
  );
});

afterEach(async () => {
  s3.destroy();
  await buckets.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function put(key: string, body: string | Buffer, extra: Record<string, unknown> = {}) {
  return s3.send(new PutObjectCommand({ Bucket: 'reports', Key: key, Body: body, ...extra }));
}

function rawPut(rawPath: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(endpoint);
    const req = http.request({ hostname, port, path: rawPath, method: 'PUT' }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function errorOf(p: Promise<unknown>): Promise<S3ServiceException> {
  try {
    await p;
  } catch (e) {
    if (e instanceof S3ServiceException) return e;
    throw e;
  }
  throw new Error('expected the request to fail');
}

test('the endpoint is an IP address, so the SDK addresses buckets path-style without forcePathStyle', async () => {
  expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  await put('x.txt', 'x');
  expect(sent[0]!.path).toBe('/reports/x.txt');
  expect(sent[0]!.headers.host).toBe(endpoint.slice('http://'.length));
});

test('put, get and head round-trip body, content type, user metadata and an md5 ETag', async () => {
  const body = '{"payments":3}';
  const out = await put('system/daily/2024-01-01.json', body, {
    ContentType: 'application/json',
    Metadata: { generator: 'daily-report', rows: '3' },
  });
  expect(out.ETag).toBe(`"${md5(body)}"`);

  const got = await s3.send(new GetObjectCommand({ Bucket: 'reports', Key: 'system/daily/2024-01-01.json' }));
  expect(await got.Body!.transformToString()).toBe(body);
  expect(got.ContentType).toBe('application/json');
  expect(got.ContentLength).toBe(body.length);
  expect(got.ETag).toBe(`"${md5(body)}"`);
  expect(got.Metadata).toEqual({ generator: 'daily-report', rows: '3' });

  const head = await s3.send(
    new HeadObjectCommand({ Bucket: 'reports', Key: 'system/daily/2024-01-01.json' }),
  );
  expect(head.ContentLength).toBe(body.length);
  expect(head.ETag).toBe(`"${md5(body)}"`);
  expect(head.Metadata).toEqual({ generator: 'daily-report', rows: '3' });

  // The object is a plain file people can open; metadata sits in the sidecar tree.
  const file = path.join(buckets.bucketDir('reports'), 'system', 'daily', '2024-01-01.json');
  expect(file).toBe(path.join(dataDir, 'buckets', 'reports', 'system', 'daily', '2024-01-01.json'));
  expect(fs.readFileSync(file, 'utf8')).toBe(body);
  const meta = JSON.parse(
    fs.readFileSync(
      path.join(dataDir, 'buckets-meta', 'reports', 'system', 'daily', '2024-01-01.json.json'),
      'utf8',
    ),
  );
  expect(meta).toMatchObject({ etag: `"${md5(body)}"`, contentType: 'application/json', size: body.length });
  // Nothing is left behind in the temporary area.
  expect(fs.readdirSync(path.join(dataDir, 'buckets-tmp'))).toEqual([]);
});

test('overwriting replaces the object and its metadata', async () => {
  await put('r.txt', 'first', { Metadata: { v: '1' } });
  await put('r.txt', 'second!', { Metadata: { v: '2' } });
  const got = await s3.send(new GetObjectCommand({ Bucket: 'reports', Key: 'r.txt' }));
  expect(await got.Body!.transformToString()).toBe('second!');
  expect(got.Metadata).toEqual({ v: '2' });
  expect(got.ETag).toBe(`"${md5('second!')}"`);
});

test('a 100 KB stream is uploaded aws-chunked by the SDK and stored decoded', async () => {
  const big = Buffer.alloc(100 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) % 251;
  const stream = Readable.from([big.subarray(0, 40_000), big.subarray(40_000, 70_001), big.subarray(70_001)]);
  const out = await s3.send(
    new PutObjectCommand({ Bucket: 'reports', Key: 'big.bin', Body: stream, ContentLength: big.length }),
  );
  // Proves the aws-chunked path was exercised, not a plain body.
  expect(sent[0]!.headers['x-amz-content-sha256']).toMatch(/^STREAMING-/);
  expect(sent[0]!.headers['content-encoding']).toContain('aws-chunked');
  expect(out.ETag).toBe(`"${md5(big)}"`);

  const onDisk = fs.readFileSync(path.join(buckets.bucketDir('reports'), 'big.bin'));
  expect(onDisk.equals(big)).toBe(true);
  const got = await s3.send(new GetObjectCommand({ Bucket: 'reports', Key: 'big.bin' }));
  // The SDK validates the CRC32 that the server returns (stored from the upload's trailer).
  expect(got.ChecksumCRC32).toBeDefined();
  expect(Buffer.from(await got.Body!.transformToByteArray()).equals(big)).toBe(true);
});

test('a SigV4-signed aws-chunked body (chunk signatures) is decoded', async () => {
  const res = await fetch(`${endpoint}/reports/signed.txt`, {
    method: 'PUT',
    headers: {
      'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
      'content-encoding': 'aws-chunked',
      'x-amz-decoded-content-length': '11',
      'content-type': 'text/plain',
    },
    body: `6;chunk-signature=${'a'.repeat(64)}\r\nhello \r\n5;chunk-signature=${'b'.repeat(64)}\r\nworld\r\n0;chunk-signature=${'c'.repeat(64)}\r\n\r\n`,
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('etag')).toBe(`"${md5('hello world')}"`);
  expect(fs.readFileSync(path.join(buckets.bucketDir('reports'), 'signed.txt'), 'utf8')).toBe('hello world');
});

test('a body that does not match its declared checksum is refused with BadDigest and not stored', async () => {
  const res = await fetch(`${endpoint}/reports/bad.txt`, {
    method: 'PUT',
    headers: { 'x-amz-checksum-crc32': 'AAAAAA==' },
    body: 'hello',
  });
  expect(res.status).toBe(400);
  const xml = await res.text();
  expect(xml).toContain('<Code>BadDigest</Code>');
  expect(fs.existsSync(path.join(buckets.bucketDir('reports'), 'bad.txt'))).toBe(false);
});

test('GetObject honours a byte range', async () => {
  await put('digits.txt', '0123456789');
  const got = await s3.send(
    new GetObjectCommand({ Bucket: 'reports', Key: 'digits.txt', Range: 'bytes=2-4' }),
  );
  expect(got.$metadata.httpStatusCode).toBe(206);
  expect(got.ContentRange).toBe('bytes 2-4/10');
  expect(await got.Body!.transformToString()).toBe('234');
  const tail = await s3.send(
    new GetObjectCommand({ Bucket: 'reports', Key: 'digits.txt', Range: 'bytes=-3' }),
  );
  expect(await tail.Body!.transformToString()).toBe('789');
  const err = await errorOf(
    s3.send(new GetObjectCommand({ Bucket: 'reports', Key: 'digits.txt', Range: 'bytes=20-30' })),
  );
  expect(err.name).toBe('InvalidRange');
  expect(err.$metadata.httpStatusCode).toBe(416);
});

describe('ListObjectsV2', () => {
  const keys = [
    'merchant/m1/payouts.csv',
    'merchant/m2/payouts.csv',
    'system/daily/2024-01-01.json',
    'system/daily/2024-01-02.json',
    'system/weekly/2024-w01.json',
    'top.txt',
  ];
  beforeEach(async () => {
    // Written out of order: listing must sort.
    for (const k of [...keys].reverse()) await put(k, `body of ${k}`);
  });

  const list = (input: Omit<ListObjectsV2CommandInput, 'Bucket'>) =>
    s3.send(new ListObjectsV2Command({ Bucket: 'reports', ...input }));

  test('lists every key sorted, with size and ETag', async () => {
    const out = await list({});
    expect(out.Contents!.map((c) => c.Key)).toEqual(keys);
    expect(out.KeyCount).toBe(6);
    expect(out.IsTruncated).toBe(false);
    expect(out.Contents![5]).toMatchObject({ Key: 'top.txt', Size: 'body of top.txt'.length });
    expect(out.Contents![5]!.ETag).toBe(`"${md5('body of top.txt')}"`);
    expect(out.Contents![5]!.LastModified).toBeInstanceOf(Date);
  });

  test('prefix and delimiter group keys into common prefixes', async () => {
    const root = await list({ Delimiter: '/' });
    expect(root.CommonPrefixes!.map((p) => p.Prefix)).toEqual(['merchant/', 'system/']);
    expect(root.Contents!.map((c) => c.Key)).toEqual(['top.txt']);
    expect(root.KeyCount).toBe(3);
    expect(root.Delimiter).toBe('/');

    const system = await list({ Prefix: 'system/', Delimiter: '/' });
    expect(system.CommonPrefixes!.map((p) => p.Prefix)).toEqual(['system/daily/', 'system/weekly/']);
    expect(system.Contents ?? []).toEqual([]);
    expect(system.Prefix).toBe('system/');

    const daily = await list({ Prefix: 'system/daily/' });
    expect(daily.Contents!.map((c) => c.Key)).toEqual([
      'system/daily/2024-01-01.json',
      'system/daily/2024-01-02.json',
    ]);

    const partial = await list({ Prefix: 'system/da' });
    expect(partial.Contents!.map((c) => c.Key)).toEqual([
      'system/daily/2024-01-01.json',
      'system/daily/2024-01-02.json',
    ]);
    expect((await list({ Prefix: 'nothing/' })).KeyCount).toBe(0);
  });

  test('pages with max-keys and continuation tokens, without gaps or repeats', async () => {
    const first = await list({ MaxKeys: 4 });
    expect(first.Contents!.map((c) => c.Key)).toEqual(keys.slice(0, 4));
    expect(first.IsTruncated).toBe(true);
    expect(first.NextContinuationToken).toEqual(expect.any(String));
    const second = await list({ MaxKeys: 4, ContinuationToken: first.NextContinuationToken });
    expect(second.Contents!.map((c) => c.Key)).toEqual(keys.slice(4));
    expect(second.IsTruncated).toBe(false);
    expect(second.ContinuationToken).toBe(first.NextContinuationToken);
    expect(second.NextContinuationToken).toBeUndefined();

    // With a delimiter, a page may end on a common prefix; the next page must skip its keys.
    const seen: string[] = [];
    for await (const page of paginateListObjectsV2(
      { client: s3, pageSize: 1 },
      { Bucket: 'reports', Prefix: 'system/', Delimiter: '/' },
    )) {
      expect(page.KeyCount).toBe(1);
      seen.push(
        ...(page.CommonPrefixes ?? []).map((p) => p.Prefix!),
        ...(page.Contents ?? []).map((c) => c.Key!),
      );
    }
    expect(seen).toEqual(['system/daily/', 'system/weekly/']);

    const all: string[] = [];
    for await (const page of paginateListObjectsV2(
      { client: s3, pageSize: 2 },
      { Bucket: 'reports', Delimiter: '/' },
    )) {
      all.push(
        ...(page.CommonPrefixes ?? []).map((p) => p.Prefix!),
        ...(page.Contents ?? []).map((c) => c.Key!),
      );
    }
    expect(all).toEqual(['merchant/', 'system/', 'top.txt']);
  });

  test('start-after skips keys up to and including the given key', async () => {
    const out = await list({ StartAfter: 'system/daily/2024-01-01.json' });
    expect(out.Contents!.map((c) => c.Key)).toEqual(keys.slice(3));
    expect(out.StartAfter).toBe('system/daily/2024-01-01.json');
  });

  test('a file dropped into the bucket folder by hand is an object', async () => {
    const file = path.join(buckets.bucketDir('reports'), 'manual', 'note.txt');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, 'by hand');
    const out = await list({ Prefix: 'manual/' });
    expect(out.Contents!.map((c) => [c.Key, c.Size, c.ETag])).toEqual([
      ['manual/note.txt', 7, `"${md5('by hand')}"`],
    ]);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'reports', Key: 'manual/note.txt' }));
    expect(await got.Body!.transformToString()).toBe('by hand');
  });
});

test('delete removes the file, its sidecar and now-empty folders; a missing key is NoSuchKey', async () => {
  await put('a/b/c.txt', 'c');
  await put('a/keep.txt', 'k');
  const del = await s3.send(new DeleteObjectCommand({ Bucket: 'reports', Key: 'a/b/c.txt' }));
  expect(del.$metadata.httpStatusCode).toBe(204);
  expect(fs.existsSync(path.join(buckets.bucketDir('reports'), 'a', 'b'))).toBe(false);
  expect(fs.existsSync(path.join(dataDir, 'buckets-meta', 'reports', 'a', 'b'))).toBe(false);
  expect(fs.existsSync(path.join(buckets.bucketDir('reports'), 'a', 'keep.txt'))).toBe(true);

  const err = await errorOf(s3.send(new GetObjectCommand({ Bucket: 'reports', Key: 'a/b/c.txt' })));
  expect(err.name).toBe('NoSuchKey');
  expect(err.$metadata.httpStatusCode).toBe(404);
  const headErr = await errorOf(s3.send(new HeadObjectCommand({ Bucket: 'reports', Key: 'a/b/c.txt' })));
  expect(headErr.$metadata.httpStatusCode).toBe(404);
  // Deleting what is not there succeeds, as on S3.
  const again = await s3.send(new DeleteObjectCommand({ Bucket: 'reports', Key: 'a/b/c.txt' }));
  expect(again.$metadata.httpStatusCode).toBe(204);
});

test('DeleteObjects removes several keys in one request', async () => {
  await put('x/1', '1');
  await put('x/2', '2');
  await put('x/3', '3');
  const out = await s3.send(
    new DeleteObjectsCommand({ Bucket: 'reports', Delete: { Objects: [{ Key: 'x/1' }, { Key: 'x/3' }] } }),
  );
  expect(out.Deleted!.map((d) => d.Key).sort()).toEqual(['x/1', 'x/3']);
  const left = await s3.send(new ListObjectsV2Command({ Bucket: 'reports', Prefix: 'x/' }));
  expect(left.Contents!.map((c) => c.Key)).toEqual(['x/2']);
});

test('an unknown bucket is NoSuchBucket; known buckets answer HeadBucket; CreateBucket makes a folder', async () => {
  const err = await errorOf(s3.send(new GetObjectCommand({ Bucket: 'missing', Key: 'k' })));
  expect(err.name).toBe('NoSuchBucket');
  expect(err.$metadata.httpStatusCode).toBe(404);
  const listErr = await errorOf(s3.send(new ListObjectsV2Command({ Bucket: 'missing' })));
  expect(listErr.name).toBe('NoSuchBucket');

  expect((await s3.send(new HeadBucketCommand({ Bucket: 'reports' }))).$metadata.httpStatusCode).toBe(200);
  const headErr = await errorOf(s3.send(new HeadBucketCommand({ Bucket: 'missing' })));
  expect(headErr.$metadata.httpStatusCode).toBe(404);

  const exists = await errorOf(s3.send(new CreateBucketCommand({ Bucket: 'reports' })));
  expect(exists.name).toBe('BucketAlreadyOwnedByYou');
  await s3.send(new CreateBucketCommand({ Bucket: 'fresh-bucket' }));
  expect(fs.statSync(path.join(dataDir, 'buckets', 'fresh-bucket')).isDirectory()).toBe(true);
  await s3.send(new PutObjectCommand({ Bucket: 'fresh-bucket', Key: 'k', Body: 'v' }));
  expect(fs.readFileSync(path.join(dataDir, 'buckets', 'fresh-bucket', 'k'), 'utf8')).toBe('v');
});

test('keys that would escape the bucket folder are refused and nothing is written outside', async () => {
  for (const key of ['../escaped.txt', 'a/../../escaped.txt', 'a//b', 'a/./b', 'folder/']) {
    const err = await errorOf(put(key, 'nope'));
    expect([key, err.name, err.$metadata.httpStatusCode]).toEqual([key, 'InvalidArgument', 400]);
  }
  // Percent-encoded dots are decoded before the check.
  // (node:http sends the path verbatim; fetch would normalise it on the client.)
  const raw = await rawPut('/reports/%2E%2E/escaped.txt', 'nope');
  expect(raw.status).toBe(400);
  expect(raw.body).toContain('<Code>InvalidArgument</Code>');
  expect(fs.existsSync(path.join(dataDir, 'buckets', 'escaped.txt'))).toBe(false);
  expect(fs.existsSync(path.join(dataDir, 'escaped.txt'))).toBe(false);
  expect(fs.readdirSync(buckets.bucketDir('reports'))).toEqual([]);
});

test('conditional writes: If-None-Match * refuses to overwrite an existing object', async () => {
  await put('once.json', '1', { IfNoneMatch: '*' });
  const err = await errorOf(put('once.json', '2', { IfNoneMatch: '*' }));
  expect(err.name).toBe('PreconditionFailed');
  expect(err.$metadata.httpStatusCode).toBe(412);
  const got = await s3.send(new GetObjectCommand({ Bucket: 'reports', Key: 'once.json' }));
  expect(await got.Body!.transformToString()).toBe('1');
});

test('errors are S3 XML documents', async () => {
  const res = await fetch(`${endpoint}/reports/nope.txt`);
  expect(res.status).toBe(404);
  expect(res.headers.get('content-type')).toBe('application/xml');
  const xml = await res.text();
  expect(xml).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>NoSuchKey<\/Code>/);
  expect(xml).toContain('<Key>nope.txt</Key>');
  expect(xml).toContain('<BucketName>reports</BucketName>');
});

test('objects survive a restart on the same data dir', async () => {
  await put('kept.txt', 'still here', { ContentType: 'text/plain', Metadata: { a: 'b' } });
  s3.destroy();
  await buckets.stop();
  buckets = new LocalBuckets({ dataDir, buckets: ['reports'] });
  endpoint = await buckets.start();
  s3 = new S3Client({
    endpoint,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const got = await s3.send(new GetObjectCommand({ Bucket: 'reports', Key: 'kept.txt' }));
  expect(await got.Body!.transformToString()).toBe('still here');
  expect(got.ContentType).toBe('text/plain');
  expect(got.Metadata).toEqual({ a: 'b' });
  // A bucket created at runtime is still known after the restart.
  expect((await s3.send(new HeadBucketCommand({ Bucket: 'other' }))).$metadata.httpStatusCode).toBe(200);
});

describe('presigned GetObject URLs (what the console hands a browser for a large report)', () => {
  const presign = async (key: string, expiresIn = 60, overrides = {}) => {
    const { getSignedUrl } = await import('@aws-sdk/s3-request-presigner');
    return getSignedUrl(
      new S3Client({
        endpoint,
        region: 'local',
        forcePathStyle: true,
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      }),
      new GetObjectCommand({ Bucket: 'reports', Key: key, ...overrides }),
      { expiresIn },
    );
  };
  const xmlCode = (body: string) => /<Code>([^<]+)<\/Code>/.exec(body)?.[1];

  test('a genuine URL serves the object with its response overrides; no SDK, no headers needed', async () => {
    await s3.send(
      new PutObjectCommand({ Bucket: 'reports', Key: 'm/summary/2026-11-29/a b.csv', Body: 'x,y\n1,2\n' }),
    );
    const url = await presign('m/summary/2026-11-29/a b.csv', 60, {
      ResponseContentDisposition: 'attachment; filename="a_b.csv"',
      ResponseContentType: 'text/csv; charset=utf-8',
    });
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="a_b.csv"');
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(await res.text()).toBe('x,y\n1,2\n');
  });

  test('a changed signature, key, override or lifetime is refused: 403 SignatureDoesNotMatch', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'reports', Key: 'k.csv', Body: 'secret' }));
    await s3.send(new PutObjectCommand({ Bucket: 'reports', Key: 'other.csv', Body: 'other' }));
    const url = new URL(await presign('k.csv', 60, { ResponseContentType: 'text/csv' }));
    const tamper = [
      (u: URL) => u.searchParams.set('X-Amz-Signature', '0'.repeat(64)),
      (u: URL) => (u.pathname = u.pathname.replace('k.csv', 'other.csv')),
      (u: URL) => u.searchParams.set('response-content-type', 'text/html'),
      (u: URL) => u.searchParams.set('X-Amz-Expires', '600'),
    ];
    for (const change of tamper) {
      const u = new URL(url);
      change(u);
      const res = await fetch(u);
      expect(res.status).toBe(403);
      expect(xmlCode(await res.text())).toBe('SignatureDoesNotMatch');
    }
    expect((await fetch(url)).status).toBe(200);
  });

  test('an expired URL is refused: 403 AccessDenied, Request has expired', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'reports', Key: 'old.csv', Body: 'x' }));
    const url = new URL(await presign('old.csv', 1));
    // Signed two minutes ago with a one-second lifetime: rewrite the date, which also breaks the
    // signature, so the expiry has to be what is reported (S3 checks it first).
    const signed = new Date(Date.now() - 120_000).toISOString().replace(/[-:]|\.\d{3}/g, '');
    url.searchParams.set('X-Amz-Date', signed);
    const res = await fetch(url);
    expect(res.status).toBe(403);
    const body = await res.text();
    expect(xmlCode(body)).toBe('AccessDenied');
    expect(body).toContain('Request has expired');
  });
});
