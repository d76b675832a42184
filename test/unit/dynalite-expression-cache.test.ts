/**
 * dynalite's expression parses, remembered (lib/local/dynalite-expression-cache.ts): every answer
 * equals the parser's own for the same request (tree, error, names and values marked used),
 * whether it came from the parser or from a template.
 */
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { cacheParses } from '../../lib/local/dynalite-expression-cache.ts';

const require = createRequire(import.meta.url);
type Parser = Parameters<typeof cacheParses>[1];
const real = {
  condition: require('dynalite/db/conditionParser') as Parser,
  update: require('dynalite/db/updateParser') as Parser,
  projection: require('dynalite/db/projectionParser') as Parser,
};
const dbModule = require('dynalite/db') as { compare: unknown };
const { isReserved } = (() => {
  // The reserved-word check dynalite's validations pass in the context.
  const words = new Set(['status', 'name', 'size', 'data', 'key', 'value', 'count', 'date']);
  return { isReserved: (w: string) => words.has(w.toLowerCase()) };
})();

type Kind = keyof typeof real;
type AttrVals = Record<string, Record<string, unknown>>;

function context(names: Record<string, string>, vals: AttrVals, isKeyCondition = false) {
  return {
    attrNames: names,
    attrVals: vals,
    unusedAttrNames: Object.fromEntries(Object.keys(names).map((n) => [n, true])),
    unusedAttrVals: Object.fromEntries(Object.keys(vals).map((n) => [n, true])),
    isReserved,
    compare: dbModule.compare,
    ...(isKeyCondition ? { isKeyCondition } : {}),
  };
}

/** The parser's answer: its tree (or the message it answers), or the error it throws, and what is left unused. */
function answer(parser: Parser, expr: string, names: Record<string, string>, vals: AttrVals, key = false) {
  const ctx = context(names, vals, key);
  let out: unknown;
  try {
    out = { tree: parser.parse(expr, { context: ctx }) };
  } catch (e) {
    out = { error: (e as Error).message };
  }
  return { out, unusedNames: ctx.unusedAttrNames, unusedVals: ctx.unusedAttrVals };
}

const cached = {
  condition: { parse: real.condition.parse.bind(real.condition) },
  update: { parse: real.update.parse.bind(real.update) },
  projection: { parse: real.projection.parse.bind(real.projection) },
};
for (const kind of Object.keys(cached) as Kind[]) cacheParses(kind, cached[kind]);

const cases: { kind: Kind; expr: string; names: Record<string, string>; vals: string[]; key?: boolean }[] = [
  { kind: 'condition', expr: 'attribute_not_exists(pk)', names: {}, vals: [] },
  {
    kind: 'condition',
    expr: '#s = :from AND attribute_exists(pk)',
    names: { '#s': 'status' },
    vals: [':from'],
  },
  { kind: 'condition', expr: '#s IN (:a, :b, :c)', names: { '#s': 'status' }, vals: [':a', ':b', ':c'] },
  { kind: 'condition', expr: 'begins_with(sk, :p)', names: {}, vals: [':p'] },
  { kind: 'condition', expr: 'size(#l) < :n', names: { '#l': 'list' }, vals: [':n'] },
  {
    kind: 'condition',
    expr: 'NOT contains(#t, :t) OR (#v < :v AND #v <> :w)',
    names: { '#t': 'tags', '#v': 'version' },
    vals: [':t', ':v', ':w'],
  },
  { kind: 'condition', expr: 'pk = :pk AND begins_with(sk, :p)', names: {}, vals: [':pk', ':p'], key: true },
  {
    kind: 'update',
    expr: 'SET #s = :to, #u = :now, #e = list_append(if_not_exists(#e, :empty), :entry) REMOVE #x ADD #n :one',
    names: { '#s': 'status', '#u': 'updated', '#e': 'events', '#x': 'lock', '#n': 'count' },
    vals: [':to', ':now', ':empty', ':entry', ':one'],
  },
  { kind: 'update', expr: 'SET a.b[0] = :v, c = c + :n', names: {}, vals: [':v', ':n'] },
  { kind: 'update', expr: 'DELETE #set :vals', names: { '#set': 'members' }, vals: [':vals'] },
  { kind: 'projection', expr: '#a, b.c, d[1]', names: { '#a': 'amount' }, vals: [] },
];

const value = fc.oneof(
  fc.string({ maxLength: 6 }).map((s) => ({ S: s })),
  fc.integer().map((n) => ({ N: String(n) })),
  fc.boolean().map((b) => ({ BOOL: b })),
  fc.constant({ L: [{ S: 'x' }] }),
  fc.constant({ SS: ['a', 'b'] }),
  fc.constant({ M: { k: { S: 'v' } } }),
  fc.constant({ NULL: true }),
);

/** Every object in a tree. */
function objectsOf(node: unknown, out: object[] = []): object[] {
  if (node === null || typeof node !== 'object') return out;
  out.push(node);
  for (const v of Object.values(node)) objectsOf(v, out);
  return out;
}
const earlier = new WeakSet<object>();

test('every parse answers what the parser answers, from the parser or from a template', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...cases),
      fc.array(value, { minLength: 6, maxLength: 6 }),
      fc.boolean(),
      fc.boolean(),
      (c, values, extraName, extraVal) => {
        const names = { ...c.names, ...(extraName ? { '#unused': 'x' } : {}) };
        const vals: AttrVals = Object.fromEntries(c.vals.map((n, i) => [n, values[i]!]));
        if (extraVal) vals[':unused'] = { S: 'u' };
        // Each side gets its own copies (a parse returns the request's value objects).
        const expected = answer(real[c.kind], c.expr, names, structuredClone(vals), c.key);
        for (let i = 0; i < 2; i++) {
          const mine = structuredClone(vals);
          const got = answer(cached[c.kind], c.expr, names, mine, c.key);
          expect(got).toEqual(expected);
          // The tree holds no value object of an earlier request (a template's stand-ins).
          const tree = (got.out as { tree?: unknown }).tree;
          expect(objectsOf(tree).some((o) => earlier.has(o))).toBe(false);
          for (const v of Object.values(mine)) earlier.add(v);
        }
      },
    ),
    { numRuns: 400 },
  );
});

test('a type that changes the parse (a number where begins_with wants a string) is not answered from a string’s template', () => {
  const c = { names: { '#a': 'name' }, expr: 'begins_with(#a, :p)' };
  const ok = answer(cached.condition, c.expr, c.names, { ':p': { S: 'x' } });
  expect(ok.out).toHaveProperty('tree');
  const bad = answer(cached.condition, c.expr, c.names, { ':p': { N: '1' } });
  expect(bad.out).toEqual(answer(real.condition, c.expr, c.names, { ':p': { N: '1' } }).out);
  expect((bad.out as { tree: unknown }).tree).toMatch(/^Incorrect operand type/);
});

test('BETWEEN and attribute_type read values: never answered from a template', () => {
  const expr = 'sk BETWEEN :a AND :b';
  expect(answer(cached.condition, expr, {}, { ':a': { S: 'a' }, ':b': { S: 'b' } }).out).toHaveProperty(
    'tree',
  );
  const reversed = answer(cached.condition, expr, {}, { ':a': { S: 'b' }, ':b': { S: 'a' } });
  expect(reversed.out).toEqual(answer(real.condition, expr, {}, { ':a': { S: 'b' }, ':b': { S: 'a' } }).out);
  expect((reversed.out as { tree: unknown }).tree).toMatch(/requires upper bound to be greater/);
  const t = 'attribute_type(#a, :t)';
  expect(answer(cached.condition, t, { '#a': 'a' }, { ':t': { S: 'S' } }).out).toHaveProperty('tree');
  expect(
    (answer(cached.condition, t, { '#a': 'a' }, { ':t': { S: 'Q' } }).out as { tree: unknown }).tree,
  ).toMatch(/^Invalid attribute type name/);
});

test('names and values another expression of the request used stay marked by this one’s template', () => {
  // First request: the update uses :v after the condition has marked it; the template must still
  // know the update uses it, for a later request where only the update does.
  const names = { '#s': 'status' };
  const vals = () => ({ ':v': { S: 'x' } });
  const ctx = context(names, vals());
  real.condition.parse('#s = :v', { context: ctx });
  cached.update.parse('SET #s = :v', { context: ctx });
  const later = context(names, vals());
  cached.update.parse('SET #s = :v', { context: later });
  expect(later.unusedAttrNames).toEqual({});
  expect(later.unusedAttrVals).toEqual({});
});
