/**
 * A reconciliation exception's reason as finance reads it. The engine writes its reasons with
 * amounts in minor units (lambdas/reconciliation/engine.ts; the reports and the CLI keep them so);
 * the console names each amount in the exception's currency, like the Expected and Actual columns
 * beside it. A reason of another form is shown as written.
 */
import { money } from './parts.ts';

type Rewrite = [RegExp, (m: string[], amt: (s: string) => string) => string];

const REWRITES: Rewrite[] = [
  [
    /^charge settled for (-?\d+) but paystep captured (-?\d+) \(difference (-?\d+)\)$/,
    (m, a) => `charge settled for ${a(m[1]!)} but paystep captured ${a(m[2]!)} (difference ${a(m[3]!)})`,
  ],
  [
    /^fee (-?\d+) on a (-?\d+) charge; the fee schedule says (-?\d+) \(difference (-?\d+)\)$/,
    (m, a) =>
      `fee ${a(m[1]!)} on a ${a(m[2]!)} charge; the fee schedule says ${a(m[3]!)} (difference ${a(m[4]!)})`,
  ],
  [
    /^refunds settled for payment (\S+) reach (-?\d+), above the (-?\d+) captured$/,
    (m, a) => `refunds settled for payment ${m[1]} reach ${a(m[2]!)}, above the ${a(m[3]!)} captured`,
  ],
  [
    /^refunds settled for payment (\S+) reach (-?\d+) but paystep refunded (-?\d+)$/,
    (m, a) => `refunds settled for payment ${m[1]} reach ${a(m[2]!)} but paystep refunded ${a(m[3]!)}`,
  ],
  [/^captured (-?\d+) on (.+)$/, (m, a) => `captured ${a(m[1]!)} on ${m[2]}`],
  [
    /^payout (\S+) paid (-?\d+) but its (\d+) lines net to (-?\d+) \(difference (-?\d+)\)$/,
    (m, a) =>
      `payout ${m[1]} paid ${a(m[2]!)} but its ${m[3]} lines net to ${a(m[4]!)} (difference ${a(m[5]!)})`,
  ],
];

export function exceptionReason(reason: string, currency: string | null | undefined): string {
  if (!currency) return reason;
  const amt = (s: string) => money(Number(s), currency);
  for (const [re, write] of REWRITES) {
    const m = re.exec(reason);
    if (m) return write(m, amt);
  }
  return reason;
}
