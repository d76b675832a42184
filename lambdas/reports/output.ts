/**
 * Report files in the reports bucket: `s3://<reports>/<merchant|platform>/<report>/<yyyy-mm-dd>/<name>.csv`
 * (RFC 4180, header row) and `<name>.json` (summary). Files hold no generation time: the same
 * inputs give the same bytes. CSV rows stream through a temporary file (constant memory).
 */
import { csvLine } from './csv.ts';
import { putFile, putText, TempFile } from './storage.ts';

export const reportKey = (owner: string, report: string, date: string, name: string, ext: 'csv' | 'json') =>
  `${owner}/${report}/${date}/${name}.${ext}`;

export class CsvReport {
  readonly key: string;
  private readonly file = new TempFile('report');
  rows = 0;

  constructor(key: string, columns: readonly string[]) {
    this.key = key;
    void this.file.write(csvLine(columns));
  }

  async row(values: readonly unknown[]): Promise<void> {
    this.rows++;
    await this.file.write(csvLine(values));
  }

  /** Uploads the file; returns its key, rows, bytes and SHA-256. */
  async publish(): Promise<{ key: string; rows: number; bytes: number; sha256: string }> {
    try {
      const f = await this.file.close();
      await putFile('reports', this.key, f.path, 'text/csv; charset=utf-8');
      return { key: this.key, rows: this.rows, bytes: f.bytes, sha256: f.sha256 };
    } finally {
      this.file.remove();
    }
  }

  discard(): void {
    void this.file.close().finally(() => this.file.remove());
  }
}

/** Stable JSON (2-space indent, trailing newline). */
export async function publishJson(key: string, body: unknown): Promise<string> {
  await putText('reports', key, `${JSON.stringify(body, null, 2)}\n`, 'application/json');
  return key;
}
