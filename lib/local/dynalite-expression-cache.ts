/**
 * dynalite's expression parsing, remembered per expression.
 *
 * dynalite parses every ConditionExpression, UpdateExpression, KeyConditionExpression,
 * FilterExpression and ProjectionExpression of every request with its PEG parsers
 * (dynalite/db/*Parser.js): a fifth of the storage engine's thread in the checkout bench's
 * profile, for a few dozen distinct expressions that paystep's stores send again and again with
 * new values.
 *
 * What a parse produces depends on the expression, its attribute names, and of its attribute
 * values only on their types — with two exceptions, `attribute_type` (reads the value) and
 * `BETWEEN` (compares the bounds), whose expressions are never remembered. The tree it returns
 * holds the request's value objects themselves. So a parse is remembered under (parser, key
 * condition or not, expression, names, each value's name and type) as a template: a copy of the
 * tree in which the first request's value objects stand for their names. Another request with the
 * same key gets a fresh copy of the template with its own value objects in their places, and the
 * names and values the expression uses are marked used in its context exactly as the parse marks
 * them (dynalite then reports the unused ones). Failed parses (the parsers answer a message, or
 * throw on a syntax error) are not remembered: each runs the parser and gets its own message.
 * At most `MAX_ENTRIES` templates are kept.
 */

type Json = Record<string, unknown>;

interface ParseContext {
  attrNames?: Record<string, string>;
  attrVals?: Record<string, Json>;
  unusedAttrNames?: Record<string, boolean>;
  unusedAttrVals?: Record<string, boolean>;
  isKeyCondition?: boolean;
  [k: string]: unknown;
}

interface Parser {
  parse(str: string, options: { context: ParseContext }): unknown;
}

interface Template {
  tree: unknown;
  /** The first request's value objects → their names (the places to fill). */
  places: Map<object, string>;
  usedNames: string[];
  usedVals: string[];
}

const MAX_ENTRIES = 2000;
const TYPES = ['S', 'N', 'B', 'NULL', 'BOOL', 'SS', 'NS', 'BS', 'L', 'M'];
/** Expressions whose parse reads values, not just their types. */
const READS_VALUES = /between|attribute_type/i;
const PATCHED = Symbol('paystep.dynalite.expressionCache');

function typeOf(v: Json | undefined): string {
  if (!v || typeof v !== 'object') return '?';
  for (const t of TYPES) if (v[t] != null) return t;
  return '?';
}

/** A copy of `node` with each object found in `places` replaced by `fill(name)`. */
function copy(node: unknown, places: Map<object, string>, fill: (name: string) => unknown): unknown {
  if (node === null || typeof node !== 'object') return node;
  const name = places.get(node);
  if (name !== undefined) return fill(name);
  if (Array.isArray(node)) return node.map((n) => copy(n, places, fill));
  const out = Object.create(Object.getPrototypeOf(node) as object | null) as Json;
  for (const k of Object.keys(node)) out[k] = copy((node as Json)[k], places, fill);
  return out;
}

/** Remembers the parses of `parser` (once per parser object). */
export function cacheParses(kind: string, parser: Parser): void {
  const target = parser as Parser & { [PATCHED]?: true };
  if (target[PATCHED]) return;
  target[PATCHED] = true;
  const parse = parser.parse.bind(parser);
  const templates = new Map<string, Template>();

  parser.parse = (str, options) => {
    const context = options?.context;
    if (!context || typeof str !== 'string' || READS_VALUES.test(str)) return parse(str, options);
    const names = context.attrNames ?? {};
    const vals = context.attrVals ?? {};
    let valKey = '';
    for (const [k, v] of Object.entries(vals)) valKey += `${k}=${typeOf(v)};`;
    const key = `${kind}\u0000${context.isKeyCondition ? 1 : 0}\u0000${str}\u0000${JSON.stringify(names)}\u0000${valKey}`;
    const hit = templates.get(key);
    if (hit) {
      templates.delete(key);
      templates.set(key, hit);
      for (const n of hit.usedNames) delete context.unusedAttrNames?.[n];
      for (const n of hit.usedVals) delete context.unusedAttrVals?.[n];
      return copy(hit.tree, hit.places, (name) => vals[name]);
    }
    // Parse with unused-sets of its own, to learn exactly which names and values this expression
    // uses (another expression of the request may have marked some already).
    const ownNames: Record<string, boolean> = {};
    const ownVals: Record<string, boolean> = {};
    for (const n of Object.keys(names)) ownNames[n] = true;
    for (const n of Object.keys(vals)) ownVals[n] = true;
    const result = parse(str, {
      ...options,
      context: { ...context, unusedAttrNames: ownNames, unusedAttrVals: ownVals },
    });
    const usedNames = Object.keys(names).filter((n) => !ownNames[n]);
    const usedVals = Object.keys(vals).filter((n) => !ownVals[n]);
    for (const n of usedNames) delete context.unusedAttrNames?.[n];
    for (const n of usedVals) delete context.unusedAttrVals?.[n];
    // A parse that fails answers its message (or throws): not remembered.
    if (typeof result === 'string') return result;
    const places = new Map<object, string>();
    for (const [n, v] of Object.entries(vals)) if (v && typeof v === 'object') places.set(v, n);
    // dynalite may change the tree it is given: the template is a copy (value objects kept as
    // markers of their places).
    const tree = copy(result, places, (name) => vals[name]);
    templates.set(key, { tree, places, usedNames, usedVals });
    if (templates.size > MAX_ENTRIES) templates.delete(templates.keys().next().value as string);
    return result;
  };
}
