/**
 * Checking what people type. Every parser throws a UsageError whose message names the value and
 * what was expected (`unknown processor 'paypal' (expected: stripe)`); `main` prints it as
 * `paystep: …` and exits with 2, without a stack trace. They are commander `argParser`s, so a
 * bad value is refused before a command starts the runtime.
 */
import { availableProcessors } from '../../lambdas/connectors/registry.ts';
import { apiProcessors, fileProcessors, SOURCES } from '../../lambdas/reconciliation/sources/index.ts';
import { dayStartMs } from '../../lambdas/shared/days.ts';

/** A mistake in the command line: printed as `paystep: <message>`, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The command ran and printed its result, but what it found is a failure (exit code 1). */
export class CommandFailed extends Error {
  override name = 'CommandFailed';
}

/** `unknown processor 'paypal' (expected: stripe)` */
export function oneOf<T extends string>(what: string, allowed: readonly T[]): (value: string) => T {
  return (value) => {
    if (!(allowed as readonly string[]).includes(value))
      throw new UsageError(`unknown ${what} '${value}' (expected: ${allowed.join(', ')})`);
    return value as T;
  };
}

export const processorName = (value: string): string => oneOf('processor', availableProcessors())(value);

/** A processor whose settlement files paystep reads (`reconcile import`, `reconcile list`). */
export const settlementProcessorName = (value: string): string => oneOf('processor', fileProcessors())(value);

/** A processor whose payouts paystep lists from its API (`reconcile sync`); Adyen has none. */
export const payoutApiProcessorName = (value: string): string => {
  const files = SOURCES[value]?.files;
  if (files && !apiProcessors().includes(value)) {
    const format = Object.values(files)[0]?.description ?? 'settlement file';
    throw new UsageError(
      `${value} has no payouts API in paystep: reconcile its ${format} with ` +
        `'paystep reconcile import --processor ${value} FILE', or drop the file under incoming/${value}/ ` +
        'in the settlements bucket',
    );
  }
  return oneOf('processor', apiProcessors())(value);
};

/** A calendar day, yyyy-mm-dd (UTC): `2026-13-45` and `2026-02-30` are refused. */
export function day(flag: string): (value: string) => string {
  return (value) => {
    if (dayStartMs(value) === undefined)
      throw new UsageError(`${flag}: '${value}' is not a date (expected: yyyy-mm-dd, e.g. 2026-01-31)`);
    return value;
  };
}

/** An integer in [min, max]. */
export function integer(flag: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const n = /^-?\d+$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max)
      throw new UsageError(`${flag}: '${value}' is not an integer from ${min} to ${max}`);
    return n;
  };
}
