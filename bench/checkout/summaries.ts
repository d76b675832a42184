/** Latency summaries of the checkout bench rounded for its JSON results and tables. */
import { round, type LatencySummary } from '../lib.ts';

export function roundSummary(s: LatencySummary): LatencySummary {
  const out = { ...s };
  for (const k of Object.keys(out) as (keyof LatencySummary)[]) if (k !== 'count') out[k] = round(out[k], 2);
  return out;
}

export function roundSummary3(s: LatencySummary): LatencySummary {
  const out = { ...s };
  for (const k of Object.keys(out) as (keyof LatencySummary)[]) if (k !== 'count') out[k] = round(out[k], 3);
  return out;
}
