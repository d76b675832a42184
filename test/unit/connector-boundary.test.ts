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

/**
 * A processor's own names in code (string literals, comments aside): its webhook event types
 * (Stripe `payment_intent.succeeded`, `charge.dispute.closed`, …; Adyen event codes), its
 * PaymentIntent statuses that are not paystep's, and its settlement report columns. Only its
 * connector (and its simulator) may spell them; the rest of paystep reads facts and settlement items.
 */
const PROCESSOR_NAMES = [
  /^(payment_intent\.[a-z_]+|charge\.[a-z_.]+|refund\.(created|updated|failed)|payout\.[a-z_]+)$/, // Stripe event types
  /^(requires_capture|requires_confirmation)$/, // Stripe PaymentIntent statuses (not paystep's)
  /^(automatic_payout_id|automatic_payout_effective_at|balance_transaction_id|reporting_category|payment_intent_id)$/,
  /^(AUTHORISATION|CAPTURE|CAPTURE_FAILED|CANCELLATION|CANCEL_OR_REFUND|TECHNICAL_CANCEL|REFUND|REFUND_FAILED|REFUNDED_REVERSED)$/,
  /^(NOTIFICATION_OF_CHARGEBACK|CHARGEBACK|CHARGEBACK_REVERSED|SECOND_CHARGEBACK|REQUEST_FOR_INFORMATION)$/,
  /^(NotificationRequestItem|notificationItems|pspReference|originalReference|MerchantPayout|Settled|Refunded)$/,
  /^(Psp Reference|Merchant Account|Gross Debit \(GC\)|Net Credit \(NC\)|Batch Number)$/,
];

/** The string literals of a source text, comments removed. */
export function stringLiterals(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
  return [...code.matchAll(/'((?:[^'\\\n]|\\.)*)'|"((?:[^"\\\n]|\\.)*)"|`((?:[^`\\$]|\\.)*)`/g)].map(
    (m) => m[1] ?? m[2] ?? m[3] ?? '',
  );
}

/**
 * Files outside the connectors that still know a processor's names, with why: to be moved (see
 * docs/connectors.md, "The boundary rule"). Keep this list short and shrinking.
 */
const STILL_OUTSIDE: Record<string, string> = {};

describe('no processor names outside the connectors', () => {
  it('no file outside lambdas/connectors/ and lib/local/processors/ spells a processor event, status or column', () => {
    const offenders = outside
      .filter((f) => !STILL_OUTSIDE[f])
      .flatMap((f) =>
        stringLiterals(readFileSync(path.join(ROOT, f), 'utf8'))
          .filter((lit) => PROCESSOR_NAMES.some((re) => re.test(lit)))
          .map((lit) => `${f}: '${lit}'`),
      );
    expect(offenders).toEqual([]);
  });

  it('recognizes the names in code and not in comments', () => {
    const src = [
      `// payment_intent.succeeded in a comment`,
      `/* 'CHARGEBACK' in a block comment */`,
      `if (t === 'charge.dispute.closed') x = "CAPTURE_FAILED";`,
      'const c = `reporting_category`;',
      `const url = 'http://example.com'; // 'refund.updated'`,
    ].join('\n');
    const found = stringLiterals(src).filter((lit) => PROCESSOR_NAMES.some((re) => re.test(lit)));
    expect(found).toEqual(['charge.dispute.closed', 'CAPTURE_FAILED', 'reporting_category']);
  });
});

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
    expect(outside).toContain('lambdas/webhooks/receive.ts');
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
