/**
 * The execution graph (lambdas/console/graph.ts): every state of the definition is a box in
 * definition order, every Next/Choice/Default/Catch an arrow, the path taken highlighted, failed
 * states red, Map/Parallel one box; text from the definition is escaped.
 */
import { edgesOf, executionGraph, takenEdges, type AslLike } from '../../lambdas/console/graph.ts';
import { escapeHtml } from '../../lambdas/console/html.ts';
import { DEFINITIONS, MACHINES } from '../../lambdas/console/workflows.ts';

const def: AslLike = {
  StartAt: 'Screen',
  States: {
    Screen: { Type: 'Task', Next: 'Review?', Catch: [{ ErrorEquals: ['States.ALL'], Next: 'Failed' }] },
    'Review?': {
      Type: 'Choice',
      Choices: [
        { Variable: '$.r', StringEquals: 'review', Next: 'Wait <review>' },
        { Variable: '$.r', StringEquals: 'again', Next: 'Wait <review>' },
      ],
      Default: 'Authorize',
    },
    'Wait <review>': { Type: 'Task', Next: 'Authorize' },
    Authorize: { Type: 'Task', Next: 'Chunks' },
    Chunks: { Type: 'Map', Next: 'Done' },
    Done: { Type: 'Succeed' },
    Failed: { Type: 'Fail' },
  },
};

/** The `<g>` of a state, by its data-state attribute (escaped as in the markup). */
const box = (svg: string, name: string) => {
  const m = new RegExp(`<g class="([^"]*)" data-state="${name}">`).exec(svg);
  return m ? m[1]!.split(' ') : undefined;
};

test('edges: Next, each Choice target once, Default and Catch, in state order', () => {
  expect(edgesOf(def)).toEqual([
    { from: 'Screen', to: 'Review?', kind: 'next' },
    { from: 'Screen', to: 'Failed', kind: 'catch' },
    { from: 'Review?', to: 'Wait <review>', kind: 'choice' },
    { from: 'Review?', to: 'Authorize', kind: 'default' },
    { from: 'Wait <review>', to: 'Authorize', kind: 'next' },
    { from: 'Authorize', to: 'Chunks', kind: 'next' },
    { from: 'Chunks', to: 'Done', kind: 'next' },
  ]);
});

test('taken edges are the consecutive pairs of the path', () => {
  expect([...takenEdges(['A', 'B', 'A', 'C'])]).toEqual(['A\u0000B', 'B\u0000A', 'A\u0000C']);
});

test('a box per state in definition order, with its type; Map is one box', () => {
  const svg = executionGraph(def);
  const order = [...svg.matchAll(/data-state="([^"]*)"/g)].map((m) => m[1]);
  expect(order).toEqual([
    'Screen',
    'Review?',
    'Wait &lt;review&gt;',
    'Authorize',
    'Chunks',
    'Done',
    'Failed',
  ]);
  expect(svg).toContain('Chunks (Map)');
  expect(svg).not.toContain('<review>'); // escaped
  expect(svg.match(/<path class="edge /g)).toHaveLength(7);
  expect(svg.match(/class="edge edge-catch/g)).toHaveLength(1);
  expect(svg).toMatch(/^<svg [^>]*role="img"[^>]*aria-label="Execution graph"/);
  expect(svg).not.toContain('class="state visited');
});

test('the path taken is highlighted; where it failed is red; the current state outlined', () => {
  const svg = executionGraph(def, { visited: ['Screen', 'Review?', 'Authorize'], failed: ['Authorize'] });
  expect(box(svg, 'Screen')).toEqual(['state', 'visited']);
  expect(box(svg, 'Review\\?')).toEqual(['state', 'visited']);
  expect(box(svg, 'Authorize')).toEqual(['state', 'visited', 'failed']);
  expect(box(svg, 'Done')).toEqual(['state']);
  expect(svg).toMatch(
    /data-state="Authorize"><title>Authorize — Task, failed<\/title><rect [^>]*fill="#fbd5d5"/,
  );
  // Screen → Review? (next) and Review? → Authorize (default) were taken; the Catch was not.
  expect(svg.match(/class="edge edge-[a-z]+ taken"/g)).toEqual([
    'class="edge edge-next taken"',
    'class="edge edge-default taken"',
  ]);
  const running = executionGraph(def, {
    visited: ['Screen', 'Review?', 'Wait <review>'],
    current: 'Wait <review>',
  });
  expect(box(running, 'Wait &lt;review&gt;')).toEqual(['state', 'visited', 'current']);
});

test('a state visited several times says so', () => {
  const svg = executionGraph(def, { visited: ['Screen', 'Review?', 'Authorize', 'Review?', 'Authorize'] });
  expect(svg).toContain('Authorize ×2');
  expect(svg).toContain('Authorize — Task, visited 2 times');
});

test('marker ids are per graph, so two graphs on one page do not share ids', () => {
  const a = executionGraph(def, { visited: [] }, { id: 'pay_1' });
  const b = executionGraph(def, { visited: [] }, { id: 'pay_1-r1' });
  const ids = (s: string) => [...s.matchAll(/ id="([^"]+)"/g)].map((m) => m[1]);
  expect(ids(a).filter((x) => ids(b).includes(x))).toEqual([]);
});

test.each(MACHINES)('the %s workflow draws: a box per state, an arrow per transition', (m) => {
  const d = DEFINITIONS[m];
  const svg = executionGraph(d, { visited: [d.StartAt] });
  expect(svg.match(/<g class="state/g)).toHaveLength(Object.keys(d.States).length);
  expect(svg.match(/<path class="edge /g) ?? []).toHaveLength(edgesOf(d).length);
  expect(svg).toContain(`<g class="state visited" data-state="${escapeHtml(d.StartAt)}">`);
});
