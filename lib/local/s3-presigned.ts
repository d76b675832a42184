/**
 * Presigned GET URLs on the local S3 (lib/local/buckets.ts), checked as S3 checks them: a request
 * signed in its query string (`X-Amz-Signature`, SigV4) is refused once `X-Amz-Date` +
 * `X-Amz-Expires` has passed (`403 AccessDenied`, "Request has expired") and when its signature is
 * not the one the local credentials give (`403 SignatureDoesNotMatch`), so a URL the console hands a
 * browser for a large report behaves locally as it does in AWS.
 *
 * The expected signature is computed by the AWS SDK's own presigner from the same request (bucket,
 * key, response overrides, date, lifetime) with the local credentials: the same serialization and
 * signing code as the URL's maker, so no signing logic is written here. Only GetObject is presigned
 * by paystep; any other query-signed request does not match and is refused.
 */
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';

/** The credentials every local client signs with (lib/local/runtime.ts). */
const LOCAL_ACCESS_KEY = 'local';
const LOCAL_SECRET = 'local';
/** S3's longest presigned lifetime (7 days). */
const MAX_EXPIRES_SECONDS = 604_800;

export interface PresignDenial {
  status: number;
  code: string;
  message: string;
}

/** `YYYYMMDDTHHMMSSZ` → Date, or undefined. */
function amzDate(s: string | null): Date | undefined {
  const m = s ? /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s) : null;
  if (!m) return undefined;
  const [, y, mo, d, h, mi, se] = m.map(Number);
  const t = Date.UTC(y!, mo! - 1, d!, h!, mi!, se!);
  return Number.isNaN(t) ? undefined : new Date(t);
}

const denied = (code: string, message: string): PresignDenial => ({ status: 403, code, message });

let signerClient: { endpoint: string; client: S3Client } | undefined;

/**
 * Why a query-signed request must be refused, or undefined when it is genuine and current.
 * `query` is the request's query string; `endpoint` is the local S3's (`http://127.0.0.1:PORT`).
 */
export async function checkPresigned(
  endpoint: string,
  method: string,
  bucket: string,
  key: string,
  query: URLSearchParams,
  nowMs = Date.now(),
): Promise<PresignDenial | undefined> {
  const signature = query.get('X-Amz-Signature');
  if (!signature) return undefined;
  if (query.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256')
    return {
      status: 400,
      code: 'AuthorizationQueryParametersError',
      message: 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"',
    };
  const date = amzDate(query.get('X-Amz-Date'));
  const expires = Number(query.get('X-Amz-Expires'));
  if (!date || !Number.isInteger(expires) || expires < 1 || expires > MAX_EXPIRES_SECONDS)
    return {
      status: 400,
      code: 'AuthorizationQueryParametersError',
      message: 'X-Amz-Date must be YYYYMMDDTHHMMSSZ and X-Amz-Expires a number of seconds from 1 to 604800.',
    };
  if (nowMs > date.getTime() + expires * 1000) return denied('AccessDenied', 'Request has expired');
  const credential = query.get('X-Amz-Credential') ?? '';
  if (!credential.startsWith(`${LOCAL_ACCESS_KEY}/`))
    return denied('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
  if (method !== 'GET' || !key)
    return denied(
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided.',
    );

  if (signerClient?.endpoint !== endpoint) {
    signerClient = {
      endpoint,
      client: new S3Client({
        endpoint,
        region: credential.split('/')[2] ?? 'local',
        forcePathStyle: true,
        credentials: { accessKeyId: LOCAL_ACCESS_KEY, secretAccessKey: LOCAL_SECRET },
      }),
    };
  }
  const expected = new URL(
    await getSignedUrl(
      signerClient.client,
      new GetObjectCommand({
        Bucket: bucket,
        Key: key,
        ResponseContentDisposition: query.get('response-content-disposition') ?? undefined,
        ResponseContentType: query.get('response-content-type') ?? undefined,
      }),
      { expiresIn: expires, signingDate: date, signingRegion: credential.split('/')[2] },
    ),
  ).searchParams.get('X-Amz-Signature');
  if (expected !== signature)
    return denied(
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided.',
    );
  return undefined;
}
