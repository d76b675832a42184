/**
 * The connector boundary (issue #8, docs/connectors.md): nothing outside a connector imports a
 * processor's SDK. Every .ts file under lambdas/ and lib/ is scanned, except the connectors
 * themselves (lambdas/connectors/**) and the processor simulators (lib/local/processors/**, which
 * speak the wire formats and may use the SDKs' types).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCANNED = ['lambdas', 'lib'];
const ALLOWED = ['lambdas/connectors/', 'lib/local/processors/'];
const SDKS = ['stripe', '@adyen/api-library'];

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/**
 * The SDKs a source text imports: `import … from 'sdk'`, `import type … from`, `export … from`,
 * `import 'sdk'`, `import('sdk')`, `require('sdk')`, and any of their subpaths (`'stripe/…'`).
 */
export function sdkImports(source: string): string[] {
  const found = new Set<string>();
  for (const sdk of SDKS) {
    const spec = `['"\`]${escape(sdk)}(?:/[^'"\`]*)?['"\`]`;
    const patterns = [
      new RegExp(`\\b(?:import|export)\\b[^;'"\`]*?\\bfrom\\s*${spec}`), // import x from / export … from
      new RegExp(`\\bimport\\s*${spec}`), // import 'sdk' (side effects)
      new RegExp(`\\bimport\\s*\\(\\s*${spec}`), // import('sdk')
      new RegExp(`\\brequire\\s*\\(\\s*${spec}`), // require('sdk'), createRequire(…)('sdk') aside
    ];
    if (patterns.some((p) => p.test(source))) found.add(sdk);
  }
  return [...found];
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (/\.[cm]?ts$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const relative = (p: string) => path.relative(ROOT, p).split(path.sep).join('/');
const all = SCANNED.flatMap((d) => tsFiles(path.join(ROOT, d))).map(relative);
const outside = all.filter((f) => !ALLOWED.some((a) => f.startsWith(a)));

describe('the connector boundary', () => {
  it('no file outside lambdas/connectors/ and lib/local/processors/ imports a processor SDK', () => {
    const offenders = outside
      .map((f) => ({ f, sdks: sdkImports(readFileSync(path.join(ROOT, f), 'utf8')) }))
      .filter((o) => o.sdks.length > 0)
      .map((o) => `${o.f} imports ${o.sdks.join(', ')}`);
    expect(offenders).toEqual([]);
  });

  it('scans the tree it means to (and sees the connectors that do import the SDKs)', () => {
    expect(outside.length).toBeGreaterThan(50);
    expect(outside).toContain('lambdas/webhooks/stripe.ts');
    expect(outside).toContain('lib/local/runtime.ts');
    expect(outside.some((f) => f.startsWith('lambdas/connectors/'))).toBe(false);
    const inside = all.filter((f) => f.startsWith('lambdas/connectors/'));
    const importers = new Set(inside.flatMap((f) => sdkImports(readFileSync(path.join(ROOT, f), 'utf8'))));
    expect([...importers].sort()).toEqual(['@adyen/api-library', 'stripe']);
  });

  it.each([
    [`import Stripe from 'stripe';`, ['stripe']],
    [`import type Stripe from "stripe";`, ['stripe']],
    [`import type { Stripe } from 'stripe';`, ['stripe']],
    [`import {\n  errors,\n  type Stripe,\n} from 'stripe';`, ['stripe']],
    [`import * as S from 'stripe/cjs/stripe.cjs.node.js';`, ['stripe']],
    [`export { default } from 'stripe';`, ['stripe']],
    [`import 'stripe';`, ['stripe']],
    [`const { default: Stripe } = await import('stripe');`, ['stripe']],
    [`const m = await import ( "stripe" );`, ['stripe']],
    ['const S = require(`stripe`);', ['stripe']],
    [`import { hmacValidator } from '@adyen/api-library';`, ['@adyen/api-library']],
    [`type T = import('@adyen/api-library').Types.checkout.PaymentResponse;`, ['@adyen/api-library']],
    [`const x = require('@adyen/api-library/lib/src/utils/hmacValidator');`, ['@adyen/api-library']],
    [`import { x } from './stripe.ts';`, []],
    [`import { x } from '../connectors/stripe/adapter.ts';`, []],
    [`import { x } from 'stripe-like';`, []],
    [`const processor = 'stripe';`, []],
    [`// @adyen/api-library (its HMAC validator) is slow to load`, []],
  ])('recognizes %j', (source, expected) => {
    expect(sdkImports(source)).toEqual(expected);
  });
});
