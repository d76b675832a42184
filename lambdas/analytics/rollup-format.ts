/**
 * Approval rollups (docs/routing.md "Approval rollups"): sums of payment contributions
 * (lambdas/domain/analytics.ts `contributionOf`) per merchant and UTC day (every combination of
 * dimension values, and per minute: payments, approved, declined), and
 * how they are stored as flat numeric attributes of one item, so that a stream batch adds its
 * deltas with one UpdateItem (`ADD` creates a missing top-level attribute; a nested one needs its
 * parent map). Pure: the store (lambdas/store/rollups.ts) writes and reads what this encodes.
 *
 * Attributes of a day item, a combination being identified by a short hash `id` of its values:
 *   `k|id` the combination (JSON array of values, ANALYTICS_DIMENSIONS order), set once;
 *   `c|id|p` payments, `|t` attempts, `|a` approved, `|d` declined, `|o` other, `|c` cascades
 *   recovered, `c|id|v|<currency>` approved volume, `c|id|r|<code>` declines by reason.
 *   `m|MMMM|p`, `m|MMMM|a`, `m|MMMM|d`: payments, approved, declined created in the 5 minutes
 *   (`BUCKET_MINUTES`) from minute MMMM of the day (0000, 0005, … 1435): at most 864 attributes a
 *   day (one a minute made a busy day's item 4,320 attributes, which every read of it carries);
 *   `s|<shard>` the highest stream sequence number applied from that shard (SEQ_WIDTH digits).
 */
import { createHash } from 'node:crypto';
import {
  ANALYTICS_DIMENSIONS,
  ApprovalAnalytics,
  type AnalyticsDimension,
  type Contribution,
  type Counts,
  type DimensionValues,
} from '../domain/analytics.ts';

/** Stream sequence numbers are stored left-padded to this width (DynamoDB's are at most 40 digits). */
export const SEQ_WIDTH = 40;

export function paddedSequence(seq: string): string {
  if (!/^\d{1,40}$/.test(seq)) throw new Error(`stream sequence number '${seq}' is not 1 to 40 digits`);
  return seq.padStart(SEQ_WIDTH, '0');
}

export const seqAttribute = (shard: string) => `s|${shard}`;

const COUNT_KEYS = {
  p: 'payments',
  t: 'attempts',
  a: 'approved',
  d: 'declined',
  o: 'other',
  c: 'cascades_recovered',
} as const satisfies Record<string, keyof Counts>;

export const comboKey = (values: DimensionValues) =>
  JSON.stringify(ANALYTICS_DIMENSIONS.map((d) => values[d]));

export const comboId = (key: string) => createHash('sha256').update(key).digest('base64url').slice(0, 12);

const emptyCounts = (): Counts => ({
  payments: 0,
  attempts: 0,
  approved: 0,
  declined: 0,
  other: 0,
  cascades_recovered: 0,
  volume: {},
  decline_reasons: {},
});

/** Counters by combination of dimension values (a day rollup, or the delta a batch adds to one). */
export class ComboSums {
  readonly combos = new Map<string, { values: DimensionValues; counts: Counts }>();

  /** Adds `sign` × the contribution. */
  add(c: Contribution, sign: 1 | -1 = 1): void {
    const key = comboKey(c.values);
    let e = this.combos.get(key);
    if (!e) this.combos.set(key, (e = { values: c.values, counts: emptyCounts() }));
    for (const k of Object.values(COUNT_KEYS)) e.counts[k] += sign * c.counts[k];
    for (const [cur, n] of Object.entries(c.counts.volume))
      e.counts.volume[cur] = (e.counts.volume[cur] ?? 0) + sign * n;
    for (const [code, n] of Object.entries(c.counts.decline_reasons))
      e.counts.decline_reasons[code] = (e.counts.decline_reasons[code] ?? 0) + sign * n;
  }

  /** The non-zero counters as item attributes (name → number), and each combination's `k|id`. */
  attributes(): { counters: Map<string, number>; keys: Map<string, string> } {
    const counters = new Map<string, number>();
    const keys = new Map<string, string>();
    for (const [key, { counts }] of this.combos) {
      const id = comboId(key);
      const before = counters.size;
      for (const [short, long] of Object.entries(COUNT_KEYS))
        if (counts[long]) counters.set(`c|${id}|${short}`, counts[long]);
      for (const [cur, n] of Object.entries(counts.volume)) if (n) counters.set(`c|${id}|v|${cur}`, n);
      for (const [code, n] of Object.entries(counts.decline_reasons))
        if (n) counters.set(`c|${id}|r|${code}`, n);
      if (counters.size > before) keys.set(`k|${id}`, key);
    }
    return { counters, keys };
  }

  /** Adds the sums a stored day item holds. */
  addItem(item: Record<string, unknown>): void {
    const byId = new Map<string, Counts>();
    const counts = (id: string) => {
      let c = byId.get(id);
      if (!c) byId.set(id, (c = emptyCounts()));
      return c;
    };
    for (const [name, v] of Object.entries(item)) {
      if (!name.startsWith('c|') || typeof v !== 'number' || !v) continue;
      const [, id, short, sub] = name.split('|') as [string, string, string, string | undefined];
      const c = counts(id);
      if (short === 'v' && sub) c.volume[sub] = v;
      else if (short === 'r' && sub) c.decline_reasons[sub] = v;
      else if (short in COUNT_KEYS) c[COUNT_KEYS[short as keyof typeof COUNT_KEYS]] = v;
    }
    for (const [id, c] of byId) {
      const key = item[`k|${id}`];
      if (typeof key !== 'string') continue; // not possible: `k|id` is set with the first counter
      const list = JSON.parse(key) as string[];
      const values = Object.fromEntries(
        ANALYTICS_DIMENSIONS.map((d, i) => [d, list[i] ?? 'unknown']),
      ) as DimensionValues;
      this.add({ values, counts: c });
    }
  }

  /** Adds another set of sums (e.g. the days' sums into a range's total, each item decoded once). */
  addSums(other: ComboSums): void {
    for (const { values, counts } of other.combos.values()) this.add({ values, counts });
  }

  /** Groups the sums by `dimensions`, as `ApprovalAnalytics` groups payments. */
  analytics(dimensions: readonly AnalyticsDimension[]): ApprovalAnalytics {
    const a = new ApprovalAnalytics(dimensions);
    for (const { values, counts } of this.combos.values()) {
      if (counts.payments === 0) continue; // every payment of it moved to another combination
      a.addCounts(values, {
        ...counts,
        volume: nonZero(counts.volume),
        decline_reasons: nonZero(counts.decline_reasons),
      });
    }
    return a;
  }

  get payments(): number {
    let n = 0;
    for (const { counts } of this.combos.values()) n += counts.payments;
    return n;
  }
}

const nonZero = (r: Record<string, number>) => Object.fromEntries(Object.entries(r).filter(([, n]) => n));

/** The per-time counters' granularity: 5 minutes (the home page shows the last hour in 12). */
export const BUCKET_MINUTES = 5;

/** The name part of the bucket that holds minute `minute` of the day (0-1439): its first minute. */
export const bucketName = (minute: number) => String(minute - (minute % BUCKET_MINUTES)).padStart(4, '0');

/** The bucket of an epoch-ms time, as the counters' names write it. */
const minuteName = (ms: number) => {
  const d = new Date(ms);
  return bucketName(d.getUTCHours() * 60 + d.getUTCMinutes());
};

/** Per-bucket counters of a day rollup: `m|MMMM|p` payments, `m|MMMM|a` approved, `m|MMMM|d` declined. */
export function minuteAttributes(c: Contribution, createdMs: number, sign: 1 | -1): [string, number][] {
  const m = minuteName(createdMs);
  const out: [string, number][] = [[`m|${m}|p`, sign * c.counts.payments]];
  if (c.counts.approved) out.push([`m|${m}|a`, sign * c.counts.approved]);
  if (c.counts.declined) out.push([`m|${m}|d`, sign * c.counts.declined]);
  return out;
}

/** The counter names of the bucket that holds `ms` (epoch ms). */
export const minuteAttributeNames = (ms: number) => ['p', 'a', 'd'].map((x) => `m|${minuteName(ms)}|${x}`);

/** The bucket that holds `ms` (epoch ms), of its day item: payments, approved, declined. */
export function minuteCounts(item: Record<string, unknown> | undefined, ms: number) {
  const [p, a, d] = minuteAttributeNames(ms).map((name) => {
    const v = item?.[name];
    return typeof v === 'number' ? v : 0;
  });
  return { payments: p!, approved: a!, declined: d! };
}
