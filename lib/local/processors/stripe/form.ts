/** Stripe's form-encoded requests: bracket notation and a typed reader with Stripe's errors. */
import { invalid } from './errors.ts';

export type Param = string | Params | Param[];
export interface Params {
  [key: string]: Param;
}

export function parseStripeForm(body: string): Params {
  const root: Params = {};
  for (const [rawKey, value] of new URLSearchParams(body)) {
    const m = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(rawKey);
    const segments = m
      ? [m[1] as string, ...[...(m[2] ?? '').matchAll(/\[([^[\]]*)\]/g)].map((x) => x[1] as string)]
      : [rawKey];
    let node: Params = root;
    for (let i = 0; i < segments.length; i++) {
      let seg = segments[i] as string;
      if (seg === '') seg = String(Object.keys(node).length);
      if (i === segments.length - 1) {
        node[seg] = value;
      } else {
        const next = node[seg];
        if (next === undefined || typeof next === 'string' || Array.isArray(next)) node[seg] = {};
        node = node[seg] as Params;
      }
    }
  }
  return listify(root) as Params;
}

/** Objects whose keys are all 0..n-1 become arrays (`expand[0]`, `payment_method_types[]`). */
export function listify(p: Param): Param {
  if (typeof p === 'string' || Array.isArray(p)) return p;
  const keys = Object.keys(p);
  for (const k of keys) p[k] = listify(p[k] as Param);
  if (keys.length > 0 && keys.every((k) => /^\d+$/.test(k))) {
    return keys.sort((a, b) => Number(a) - Number(b)).map((k) => p[k] as Param);
  }
  return p;
}

/** Typed reads of request parameters, with Stripe's validation errors. */
export class Reader {
  readonly params: Params;
  constructor(params: Params) {
    this.params = params;
  }

  allow(names: readonly string[]): void {
    for (const k of Object.keys(this.params)) {
      if (!names.includes(k)) throw invalid(`Received unknown parameter: ${k}`, k, 'parameter_unknown');
    }
  }

  string(name: string): string | undefined {
    const v = this.params[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string')
      throw invalid(`Invalid string: ${JSON.stringify(v)}`, name, 'parameter_invalid_string');
    return v;
  }

  integer(name: string): number | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    if (!/^-?\d+$/.test(v)) throw invalid(`Invalid integer: ${v}`, name, 'parameter_invalid_integer');
    return Number(v);
  }

  positiveInteger(name: string): number | undefined {
    const n = this.integer(name);
    if (n !== undefined && n < 1) {
      throw invalid('This value must be greater than or equal to 1.', name, 'parameter_invalid_integer');
    }
    return n;
  }

  boolean(name: string): boolean | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    if (v !== 'true' && v !== 'false') throw invalid(`Invalid boolean: ${v}`, name);
    return v === 'true';
  }

  oneOf<T extends string>(name: string, values: readonly T[]): T | undefined {
    const v = this.string(name);
    if (v === undefined || v === '') return undefined;
    if (!values.includes(v as T)) {
      const list = values.length > 1 ? `${values.slice(0, -1).join(', ')}, or ${values.at(-1)}` : values[0];
      throw invalid(`Invalid ${name}: must be one of ${list}`, name);
    }
    return v as T;
  }

  stringList(name: string): string[] | undefined {
    const v = this.params[name];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw invalid('Invalid array', name);
    return v as string[];
  }

  object(name: string): Params | undefined {
    const v = this.params[name];
    if (v === undefined || v === '') return undefined;
    if (typeof v === 'string' || Array.isArray(v)) throw invalid('Invalid object', name);
    return v;
  }

  metadata(name = 'metadata'): Record<string, string> | undefined {
    const m = this.object(name);
    if (!m) return undefined;
    const out: Record<string, string> = {};
    const keys = Object.keys(m);
    if (keys.length > 50) throw invalid('Invalid metadata: metadata can have at most 50 keys.', name);
    for (const k of keys) {
      const v = m[k];
      if (typeof v !== 'string') throw invalid(`Invalid string: ${JSON.stringify(v)}`, `${name}[${k}]`);
      if (k.length > 40)
        throw invalid('Invalid metadata: keys can be at most 40 characters long.', `${name}[${k}]`);
      if (v.length > 500)
        throw invalid('Invalid metadata: values can be at most 500 characters long.', `${name}[${k}]`);
      out[k] = v;
    }
    return out;
  }

  expand(): string[] {
    return this.stringList('expand') ?? [];
  }
}
