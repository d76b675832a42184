/**
 * Resolving a reconciliation exception by hand (docs/finance.md "Exceptions"): finance looked into
 * it (asked the processor, booked it in the accounts) and closes it with a note saying what was
 * done. The change is guarded (open → resolved, never twice: two people resolving at once get one
 * success and one refusal), recorded with who and the note. Shared by the ops console
 * (/console/finance) and `paystep reconcile resolve`. A later run that sees the same
 * difference again opens it again (its id is deterministic), as for an exception a run resolved.
 */
import { PaystepError } from '../shared/errors.ts';
import {
  exceptionOwner,
  getException,
  openExceptions,
  resolveException as markResolved,
  type StoredException,
} from '../store/reconciliation.ts';

/** A resolution that cannot be done as asked; `code` says which (callers map it to 400/404/409). */
export class ExceptionResolutionError extends PaystepError {
  override name = 'ExceptionResolutionError';
}
export const EXCEPTION_NOT_FOUND = 'exception_not_found';
export const EXCEPTION_ALREADY_RESOLVED = 'exception_already_resolved';
export const NOTE_INVALID = 'note_invalid';

export const MAX_NOTE = 1000;

/**
 * Resolves exception `id` with `note`, by `by` (an operator or CLI user). `owner` (merchant id or
 * `platform`) names whose it is; without it the open exceptions are searched for the id. Returns
 * the exception before and after.
 */
export async function resolveException(
  id: string,
  note: string,
  by: string,
  opts: { owner?: string; now?: number } = {},
): Promise<{ before: StoredException; after: StoredException }> {
  const text = note.trim();
  if (!text)
    throw new ExceptionResolutionError('a note saying how it was resolved is required', {
      code: NOTE_INVALID,
    });
  if (text.length > MAX_NOTE)
    throw new ExceptionResolutionError(`the note must be at most ${MAX_NOTE} characters`, {
      code: NOTE_INVALID,
    });
  const before = opts.owner
    ? await getException(opts.owner, id)
    : (await openExceptions()).find((e) => e.id === id);
  if (!before)
    throw new ExceptionResolutionError(
      `no ${opts.owner ? '' : 'open '}reconciliation exception '${id}'${opts.owner ? ` of ${opts.owner}` : ''}`,
      { code: EXCEPTION_NOT_FOUND },
    );
  const owner = exceptionOwner(before);
  const refused = () =>
    new ExceptionResolutionError(
      `exception '${id}' is resolved already${before.resolution ? ` (${before.resolution})` : ''}`,
      { code: EXCEPTION_ALREADY_RESOLVED },
    );
  if (before.status !== 'open') throw refused();
  const day = new Date(opts.now ?? Date.now()).toISOString().slice(0, 10);
  if (!(await markResolved(owner, id, day, text, by))) {
    const now = await getException(owner, id);
    throw new ExceptionResolutionError(
      `exception '${id}' was resolved meanwhile${now?.resolution ? ` (${now.resolution})` : ''}`,
      { code: EXCEPTION_ALREADY_RESOLVED },
    );
  }
  return { before, after: (await getException(owner, id))! };
}
