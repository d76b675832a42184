/**
 * `npm start` runs the runtime with the flags the benchmarks measure it with
 * (lib/local/node-flags.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { RUNTIME_NODE_FLAGS, withRuntimeFlags } from '../../lib/local/node-flags.ts';

test('package.json start script passes the runtime flags to node', () => {
  const pkg = JSON.parse(
    fs.readFileSync(path.join(import.meta.dirname, '..', '..', 'package.json'), 'utf8'),
  ) as {
    scripts: Record<string, string>;
  };
  expect(pkg.scripts['start']).toBe(`node ${RUNTIME_NODE_FLAGS.join(' ')} lib/local/main.ts`);
});

test('withRuntimeFlags adds the flags once, replacing another value of the same flag', () => {
  expect(withRuntimeFlags(['--expose-gc'])).toEqual(['--expose-gc', ...RUNTIME_NODE_FLAGS]);
  expect(withRuntimeFlags(['--max-semi-space-size=16', '--expose-gc'])).toEqual([
    '--expose-gc',
    ...RUNTIME_NODE_FLAGS,
  ]);
});
