/**
 * Loading a workflow definition from statemachines/: the ONE loader both runtimes use, so AWS and
 * the local runtime run the same definition.
 * - lib/stack.ts deploys `deployedAslText(file text)`; Step Functions fills `${Name}` from
 *   definitionSubstitutions;
 * - the local runtime fills `${Name}` itself with `substitute` (lib/local/asl.ts re-exports it), which
 *   starts from the same `deployedAslText`.
 *
 * Named retry policies (docs/states.md, "Retry policies"). A Task (or Parallel/Map) state names its
 * policy instead of repeating a Retry block:
 *
 *   "Retry": "@retry:TechnicalErrors"
 *
 * The policies live in statemachines/retry-policies.json (`{"Comment", "Policies": {Name: [...]}}`).
 * A policy is an ordered list whose items are retriers (ASL Retry objects) or `"@retry:<Name>"`
 * references to other policies, expanded in place. A state's Retry may also be such a list. Every
 * expansion copies the retriers (no object is shared between states). The files stay valid JSON; an
 * unknown name, a reference cycle or a malformed item is an error naming the file and the state.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type AslState = Record<string, Json> & { Type: string };
export interface AslDefinition {
  StartAt: string;
  States: Record<string, AslState>;
  [k: string]: Json;
}
export type Retrier = { ErrorEquals: string[] } & Record<string, Json>;
/** Name → the policy's retriers, fully expanded, in order. */
export type RetryPolicies = Record<string, Retrier[]>;

export const RETRY_REFERENCE = '@retry:';
export const RETRY_POLICIES_FILE = fileURLToPath(
  new URL('../statemachines/retry-policies.json', import.meta.url),
);

const isObject = (v: unknown): v is Record<string, Json> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The policy name of `"@retry:<Name>"`, or undefined if `v` is not a reference. */
export function retryReference(v: unknown): string | undefined {
  return typeof v === 'string' && v.startsWith(RETRY_REFERENCE) ? v.slice(RETRY_REFERENCE.length) : undefined;
}

/** Expands the `Policies` of a retry-policies document (references between policies resolved). */
export function parseRetryPolicies(doc: unknown, file = 'retry-policies.json'): RetryPolicies {
  if (!isObject(doc) || !isObject(doc.Policies))
    throw new Error(`${file}: expected {"Comment": "...", "Policies": {"<Name>": [retriers]}}`);
  const raw = doc.Policies;
  const out: RetryPolicies = {};
  const expand = (name: string, chain: string[]): Retrier[] => {
    if (out[name]) return out[name];
    if (chain.includes(name))
      throw new Error(`${file}: retry policy reference cycle ${[...chain, name].join(' → ')}`);
    const items = raw[name];
    if (items === undefined)
      throw new Error(`${file}: policy ${chain.at(-1)} refers to unknown retry policy "${name}"`);
    if (!Array.isArray(items) || items.length === 0)
      throw new Error(`${file}: retry policy "${name}" must be a non-empty list`);
    const list = items.flatMap((item) => {
      const ref = retryReference(item);
      if (ref !== undefined) return expand(ref, [...chain, name]);
      return [checkRetrier(item, `${file}: retry policy "${name}"`)];
    });
    out[name] = list;
    return list;
  };
  for (const name of Object.keys(raw)) expand(name, []);
  return out;
}

function checkRetrier(item: Json, where: string): Retrier {
  if (
    !isObject(item) ||
    !Array.isArray(item.ErrorEquals) ||
    item.ErrorEquals.length === 0 ||
    !item.ErrorEquals.every((e) => typeof e === 'string')
  )
    throw new Error(
      `${where}: ${JSON.stringify(item)} is neither a retrier nor a "${RETRY_REFERENCE}<Name>"`,
    );
  return item as Retrier;
}

export function loadRetryPolicies(file = RETRY_POLICIES_FILE): RetryPolicies {
  return parseRetryPolicies(JSON.parse(fs.readFileSync(file, 'utf8')), path.basename(file));
}

/** The retriers a state's `Retry` value stands for (references expanded, every retrier a copy). */
export function expandRetry(value: Json, policies: RetryPolicies, where: string): Retrier[] {
  const items = Array.isArray(value) ? value : [value];
  if (!Array.isArray(value) && retryReference(value) === undefined)
    throw new Error(`${where}: Retry must be a list of retriers or "${RETRY_REFERENCE}<Name>"`);
  return items.flatMap((item) => {
    const ref = retryReference(item);
    if (ref === undefined) return [structuredClone(checkRetrier(item, where))];
    const policy = policies[ref];
    if (!policy)
      throw new Error(
        `${where}: unknown retry policy "${ref}" (known: ${Object.keys(policies).sort().join(', ')})`,
      );
    return structuredClone(policy);
  });
}

/**
 * A copy of `definition` with every state's Retry expanded, in nested Parallel branches and Map
 * item processors too. Definitions without references come back equal.
 */
export function expandRetryReferences(
  definition: AslDefinition,
  policies: RetryPolicies,
  file: string,
): AslDefinition {
  const out = structuredClone(definition);
  const visit = (machine: { States?: Record<string, AslState> }) => {
    for (const [name, state] of Object.entries(machine.States ?? {})) {
      if (state.Retry !== undefined)
        state.Retry = expandRetry(state.Retry, policies, `${file}: state "${name}"`) as Json;
      if (Array.isArray(state.Branches))
        for (const b of state.Branches) if (isObject(b)) visit(b as { States?: Record<string, AslState> });
      const inner = state.ItemProcessor ?? state.Iterator;
      if (isObject(inner)) visit(inner as { States?: Record<string, AslState> });
    }
  };
  visit(out);
  return out;
}

/**
 * The definition that is deployed for an ASL file's text: retry policy references expanded,
 * `${Name}` placeholders kept (each runtime fills them).
 */
export function deployedAslText(text: string, file: string, policies = loadRetryPolicies()): string {
  let definition: AslDefinition;
  try {
    definition = JSON.parse(text) as AslDefinition;
  } catch (err) {
    throw new Error(`${file}: not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  return JSON.stringify(expandRetryReferences(definition, policies, file));
}

/**
 * The deployed definition with its `${Name}` placeholders filled (what the local runtime runs); an
 * unknown placeholder is an error (it would fail in AWS too).
 */
export function substitute(text: string, values: Record<string, string>, file: string): string {
  return deployedAslText(text, file).replace(/\$\{([A-Za-z0-9_]+)\}/g, (_, name: string) => {
    const v = values[name];
    if (v === undefined) throw new Error(`${file}: no substitution for \${${name}}`);
    return v;
  });
}
