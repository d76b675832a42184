/**
 * A report file from the reports bucket as a console response: in the response itself when it is
 * small, else a 303 to a short-lived presigned S3 URL, because a Lambda response behind API Gateway
 * carries at most 6 MB (docs/console.md "Routes").
 */
import { getText, objectSize, signedDownloadUrl } from '../reports/storage.ts';
import type { ConsoleResponse } from './types.ts';

/** Files up to this size come back in the console's own response. */
export const INLINE_DOWNLOAD_BYTES = 5 * 1024 * 1024;
/** How long a presigned download URL works. */
export const DOWNLOAD_URL_SECONDS = 300;

/** The reports bucket's `key`, downloaded as `filename`; a missing key rejects as GetObject does. */
export async function reportFile(
  key: string,
  filename: string,
  contentType: string,
): Promise<ConsoleResponse> {
  if ((await objectSize('reports', key)) > INLINE_DOWNLOAD_BYTES) {
    const to = await signedDownloadUrl('reports', key, {
      filename,
      contentType,
      expiresSeconds: DOWNLOAD_URL_SECONDS,
    });
    return { kind: 'external', to };
  }
  return { kind: 'download', filename, contentType, body: await getText('reports', key) };
}
