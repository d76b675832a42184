/**
 * The local runtime validates each state machine definition as written once per content
 * (lib/local/asl-validation.ts): an invalid definition is refused every time (a failure is never
 * remembered), a valid one is remembered, and a change to it is validated again.
 */
import { randomUUID } from 'node:crypto';
import { validateDefinition } from '../../lib/local/asl-validation.ts';

const valid = (comment: string) => ({
  Comment: comment,
  StartAt: 'Done',
  States: { Done: { Type: 'Succeed' } },
});

test('an invalid definition is refused every time; a valid one passes, again from the cache', () => {
  const bad = { Comment: randomUUID(), StartAt: 'Nowhere', States: { Done: { Type: 'Succeed' } } };
  expect(() => validateDefinition(bad)).toThrow(/invalid/i);
  expect(() => validateDefinition(bad)).toThrow(/invalid/i);
  const good = valid(randomUUID());
  expect(() => validateDefinition(good)).not.toThrow();
  expect(() => validateDefinition(good)).not.toThrow();
  // The same definition made invalid is not taken for the one that passed.
  expect(() => validateDefinition({ ...good, States: { Done: { Type: 'Nope' } } })).toThrow(/invalid/i);
});
