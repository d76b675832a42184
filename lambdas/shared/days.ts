/** Calendar days as yyyy-mm-dd (UTC), shared by the API's and the CLI's date parameters. */

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

/** The start of the day (epoch ms, UTC), or undefined when `value` is not a real calendar day
 * (`2026-13-45` and `2026-02-30` are refused). */
export function dayStartMs(value: string): number | undefined {
  const m = DAY.exec(value);
  if (!m) return undefined;
  const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return new Date(t).toISOString().slice(0, 10) === value ? t : undefined;
}
