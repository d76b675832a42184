/**
 * The local runtime enforces the same permissions the CDK stack grants (lib/local/permissions.ts):
 * for every function role and every state machine role of the synthesized template, the statements
 * (data-plane actions × resources, read from the template and translated to local ARNs) are exactly
 * those the local runtime checks requests against. A grant added to lib/stack.ts or lib/function.ts
 * without its local counterpart (or the reverse) fails here.
 */
import {
  functionPolicy,
  localArns,
  stateMachinePolicy,
  type Statement,
} from '../../lib/local/permissions.ts';
import { physicalName } from '../../lib/local/runtime.ts';
import { topology } from '../../lib/topology.ts';
import { synthPaystep } from './synth.ts';

type Json = Record<string, unknown>;
interface Resource {
  Type: string;
  Properties?: Json;
  Metadata?: Json;
}

const STACK = 'Paystep';
/** Services whose calls the local runtime checks (logs and X-Ray are not data-plane calls here). */
const CHECKED = /^(dynamodb|sqs|s3|states|secretsmanager|lambda):/i;

let resources: Record<string, Resource>;
beforeAll(() => {
  resources = (synthPaystep().template.toJSON() as { Resources: Record<string, Resource> }).Resources;
});

const arns = localArns(physicalName);
const named = (id: string) => {
  const m = resources[id]?.Metadata;
  return m ? { kind: m['paystep:kind'] as string, name: m['paystep:name'] as string } : undefined;
};

/** A template resource expression as a local ARN; undefined when it names nothing checked. */
function resolve(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  const v = value as Json;
  if (typeof v.Ref === 'string') {
    const pseudo: Record<string, string> = {
      'AWS::Partition': 'aws',
      'AWS::Region': 'local',
      'AWS::AccountId': '000000000000',
    };
    if (pseudo[v.Ref]) return pseudo[v.Ref];
    const n = named(v.Ref);
    return n?.kind === 'secret' ? arns.secret(n.name) : undefined;
  }
  const getAtt = v['Fn::GetAtt'] as [string, string] | undefined;
  if (getAtt) {
    const n = named(getAtt[0]);
    if (!n) return undefined;
    if (getAtt[1] === 'StreamArn' && n.kind === 'table') return arns.stream(n.name);
    if (getAtt[1] !== 'Arn') return undefined;
    const byKind: Record<string, (name: string) => string> = {
      table: arns.table,
      queue: arns.queue,
      'dead-letter-queue': arns.queue,
      bucket: arns.bucket,
      function: arns.function,
      'state-machine': arns.stateMachine,
    };
    return byKind[n.kind]?.(n.name);
  }
  const join = v['Fn::Join'] as [string, unknown[]] | undefined;
  if (join) {
    const parts = join[1].map(resolve);
    if (parts.some((p) => p === undefined)) return undefined;
    // State machines are named `<stack>-<name>` in AWS (a constructed ARN), `paystep-<name>` locally.
    return parts
      .join(join[0])
      .replace(`:stateMachine:${STACK}-`, ':stateMachine:paystep-')
      .replace(`:execution:${STACK}-`, ':execution:paystep-');
  }
  return undefined;
}

const list = <T>(x: T | T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);
const refOf = (x: unknown) =>
  (x as { Ref?: string }).Ref ?? (x as { 'Fn::GetAtt'?: string[] })['Fn::GetAtt']?.[0];

/** `<action> <resource>` pairs the template grants to a role, for the checked services. */
function templateGrants(roleId: string, unresolved: string[]): string[] {
  const statements: Json[] = [];
  for (const r of Object.values(resources)) {
    if (r.Type === 'AWS::IAM::Policy' && list(r.Properties?.Roles).some((x) => refOf(x) === roleId))
      statements.push(...list((r.Properties?.PolicyDocument as Json).Statement as Json[]));
  }
  for (const p of list(resources[roleId]?.Properties?.Policies as Json[]))
    statements.push(...list((p.PolicyDocument as Json).Statement as Json[]));
  const out: string[] = [];
  for (const s of statements) {
    if (s.Effect !== 'Allow') continue;
    const actions = list(s.Action as string | string[]).filter((a) => CHECKED.test(a));
    if (actions.length === 0) continue;
    for (const r of list(s.Resource)) {
      const arn = resolve(r);
      if (arn === undefined) unresolved.push(`${roleId}: ${JSON.stringify(r)}`);
      else for (const a of actions) out.push(`${a} ${arn}`);
    }
  }
  return [...new Set(out)].sort();
}

const localGrants = (statements: Statement[]) =>
  [
    ...new Set(statements.flatMap((s) => s.actions.flatMap((a) => s.resources.map((r) => `${a} ${r}`)))),
  ].sort();

function roles(type: string, property: string, kind: string): [string, string][] {
  return Object.entries(resources)
    .filter(([id, r]) => r.Type === type && named(id)?.kind === kind)
    .map(([id, r]) => [named(id)!.name, refOf(r.Properties?.[property])!]);
}

test('every function role grants exactly what the local runtime allows the function', () => {
  const fns = roles('AWS::Lambda::Function', 'Role', 'function');
  expect(fns.map(([n]) => n).sort()).toEqual(Object.keys(topology.functions).sort());
  const unresolved: string[] = [];
  const mismatches: Record<string, { template: string[]; local: string[] }> = {};
  for (const [fn, roleId] of fns) {
    const template = templateGrants(roleId, unresolved);
    const local = localGrants(functionPolicy(topology, fn, physicalName));
    if (JSON.stringify(template) !== JSON.stringify(local))
      mismatches[fn] = {
        template: template.filter((g) => !local.includes(g)),
        local: local.filter((g) => !template.includes(g)),
      };
  }
  expect(unresolved).toEqual([]);
  expect(mismatches).toEqual({});
}, 120_000);

test('every state machine role grants exactly what the local engine allows its tasks', () => {
  const machines = roles('AWS::StepFunctions::StateMachine', 'RoleArn', 'state-machine');
  expect(machines.map(([n]) => n).sort()).toEqual(Object.keys(topology.stateMachines).sort());
  const unresolved: string[] = [];
  for (const [sm, roleId] of machines) {
    expect({ sm, grants: templateGrants(roleId, unresolved) }).toEqual({
      sm,
      grants: localGrants(stateMachinePolicy(topology, sm, physicalName)),
    });
  }
  expect(unresolved).toEqual([]);
});
