/**
 * CSV as RFC 4180 says: records end with CRLF, fields containing a comma, a double quote, CR or LF
 * are enclosed in double quotes with inner quotes doubled. The reader is streaming and accepts
 * LF or CRLF, quoted fields across lines, and a UTF-8 byte order mark.
 */
import type { Readable } from 'node:stream';
import { PaystepError } from '../shared/errors.ts';

const NEEDS_QUOTES = /[",\r\n]/;

export function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return NEEDS_QUOTES.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const csvLine = (values: readonly unknown[]): string => `${values.map(csvField).join(',')}\r\n`;

/** Parses one complete record (which may span lines) that contains quotes. */
function parseQuoted(s: string): string[] {
  const out: string[] = [];
  let i = 0;
  const n = s.length;
  for (;;) {
    let field = '';
    if (s[i] === '"') {
      i++;
      for (;;) {
        const q = s.indexOf('"', i);
        if (q < 0) throw new CsvError('unterminated quoted field');
        field += s.slice(i, q);
        if (s[q + 1] === '"') {
          field += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      if (i < n && s[i] !== ',') throw new CsvError('text after a closing quote');
    } else {
      const c = s.indexOf(',', i);
      const end = c < 0 ? n : c;
      field = s.slice(i, end);
      if (field.includes('"')) throw new CsvError('a quote inside an unquoted field');
      i = end;
    }
    out.push(field);
    if (i >= n) return out;
    i++; // the comma
    if (i === n) {
      out.push('');
      return out;
    }
  }
}

export class CsvError extends PaystepError {
  override name = 'CsvError';
}

function quoteCount(s: string, from: number, to: number): number {
  let c = 0;
  for (let i = s.indexOf('"', from); i >= 0 && i < to; i = s.indexOf('"', i + 1)) c++;
  return c;
}

/** Incremental reader: feed text, get complete records. Empty lines are skipped. */
export class CsvReader {
  private rest = '';
  private first = true;

  push(chunk: string): string[][] {
    let data = this.rest ? this.rest + chunk : chunk;
    if (this.first && data.length) {
      if (data.charCodeAt(0) === 0xfeff) data = data.slice(1);
      this.first = false;
    }
    const rows: string[][] = [];
    let start = 0;
    for (;;) {
      let nl = data.indexOf('\n', start);
      if (nl < 0) break;
      const q = data.indexOf('"', start);
      if (q < 0 || q > nl) {
        const end = nl > start && data.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
        if (end > start) rows.push(data.slice(start, end).split(','));
        start = nl + 1;
        continue;
      }
      // Quoted: the record ends at the first newline after an even number of quotes.
      let quotes = quoteCount(data, start, nl);
      while (quotes % 2 === 1) {
        const next = data.indexOf('\n', nl + 1);
        if (next < 0) {
          nl = -1;
          break;
        }
        quotes += quoteCount(data, nl + 1, next);
        nl = next;
      }
      if (nl < 0) break;
      const end = data.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      rows.push(parseQuoted(data.slice(start, end)));
      start = nl + 1;
    }
    this.rest = start ? data.slice(start) : data;
    return rows;
  }

  /** The last record when the text does not end with a newline. */
  end(): string[][] {
    const rest = this.rest.replace(/\r$/, '');
    this.rest = '';
    if (!rest) return [];
    if (quoteCount(rest, 0, rest.length) % 2 === 1) throw new CsvError('unterminated quoted field at end');
    return [rest.includes('"') ? parseQuoted(rest) : rest.split(',')];
  }
}

/** Records of a stream, in batches (one per chunk read): cheap per record. */
export async function* csvBatches(
  stream: Readable | AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
): AsyncGenerator<string[][]> {
  const reader = new CsvReader();
  const decoder = new TextDecoder('utf-8');
  for await (const chunk of stream) {
    const text = typeof chunk === 'string' ? chunk : decoder.decode(chunk as Buffer, { stream: true });
    const rows = reader.push(text);
    if (rows.length) yield rows;
  }
  const tail = reader.push(decoder.decode());
  const last = [...tail, ...reader.end()];
  if (last.length) yield last;
}

/** A header row as a column index, with a readable error for missing required columns. */
export function columnIndex(header: string[], required: readonly string[]): Map<string, number> {
  const idx = new Map(header.map((h, i) => [h.trim(), i]));
  const missing = required.filter((c) => !idx.has(c));
  if (missing.length) throw new CsvError(`missing column(s): ${missing.join(', ')}`);
  return idx;
}
