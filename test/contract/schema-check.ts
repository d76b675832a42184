/**
 * Validates processor answers against the vendored schemas (vendor/openapi/<processor>/schemas.json,
 * written by scripts/vendor-openapi.ts from the pinned SDKs' API descriptions) with Ajv.
 *
 * `check(root, body)` returns one readable line per violation (empty: valid): a field the API does not
 * have (every vendored object is closed), a missing required field, a wrong type, a value outside an
 * enum (error codes, statuses, event codes …).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

export type Processor = 'stripe' | 'adyen';

export interface VendoredSchemas {
  'x-packages': Record<string, string>;
  'x-api-version': string;
  'x-roots': Record<string, object>;
  $defs: Record<string, object>;
}

export const vendorPath = (processor: Processor): string =>
  path.resolve(import.meta.dirname, '../../vendor/openapi', processor, 'schemas.json');

export function loadSchemas(processor: Processor): VendoredSchemas {
  return JSON.parse(fs.readFileSync(vendorPath(processor), 'utf8')) as VendoredSchemas;
}

export class SchemaChecker {
  readonly schemas: VendoredSchemas;
  private readonly ajv: Ajv2020;
  private readonly compiled = new Map<string, ValidateFunction>();
  /** Every root a test checked, with how many bodies (to assert coverage). */
  readonly checked = new Map<string, number>();

  constructor(processor: Processor) {
    this.schemas = loadSchemas(processor);
    this.ajv = new Ajv2020({ allErrors: true, strict: false });
    (addFormats as unknown as (a: Ajv2020) => void)(this.ajv);
    // One document (the shared schemas and every root), so that each shared schema compiles once.
    this.id = `https://paystep.invalid/${processor}`;
    const roots = Object.fromEntries(
      Object.entries(this.schemas['x-roots']).map(([k, v]) => [`root:${k}`, v]),
    );
    this.ajv.addSchema({ $id: this.id, $defs: { ...this.schemas.$defs, ...roots } });
  }

  private readonly id: string;

  private validator(root: string): ValidateFunction {
    let fn = this.compiled.get(root);
    if (!fn) {
      if (!this.schemas['x-roots'][root]) throw new Error(`no vendored schema ${root}`);
      fn = this.ajv.getSchema(`${this.id}#/$defs/root:${root}`);
      if (!fn) throw new Error(`could not compile ${root}`);
      this.compiled.set(root, fn);
    }
    return fn;
  }

  check(root: string, body: unknown): string[] {
    this.checked.set(root, (this.checked.get(root) ?? 0) + 1);
    const fn = this.validator(root);
    if (fn(body)) return [];
    // anyOf failures repeat every branch's complaint: keep the most specific lines, once each.
    const lines = (fn.errors ?? [])
      .filter((e) => e.keyword !== 'anyOf')
      .map((e) => {
        const at = e.instancePath || '/';
        if (e.keyword === 'additionalProperties')
          return `${root}${at}: unknown field "${String(e.params.additionalProperty)}"`;
        if (e.keyword === 'enum')
          return `${root}${at}: ${JSON.stringify(valueAt(body, e.instancePath))} is not one of the API's values`;
        return `${root}${at}: ${e.message ?? e.keyword}`;
      });
    // A nullable or expandable field that failed as an object also "must be null" / "must be string":
    // keep such a type complaint only when nothing deeper explains the failure.
    const errors = fn.errors ?? [];
    const explained = (at: string) =>
      errors.some((e) => e.keyword !== 'type' && e.keyword !== 'anyOf' && e.instancePath.startsWith(at));
    const kept = lines.filter((_, i) => {
      const e = errors.filter((x) => x.keyword !== 'anyOf')[i];
      return !(e && e.keyword === 'type' && explained(e.instancePath));
    });
    return [...new Set(kept)];
  }
}

function valueAt(body: unknown, pointer: string): unknown {
  let v = body;
  for (const part of pointer.split('/').slice(1)) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return v;
}
