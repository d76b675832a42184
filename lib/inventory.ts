/**
 * What a synthesized CloudFormation template contains, in topology terms, read back from the TEMPLATE
 * (never from the topology): the parity test compares it with what the local runtime built.
 *
 * Names come from the `paystep:kind` / `paystep:name` Metadata that lib/stack.ts puts on each resource;
 * routes are rebuilt from the API Gateway resources themselves (Method → Resource chain → path), and
 * their targets and event sources from the references between resources.
 *
 * The REST API and the alarms live in nested stacks (docs/architecture.md "Stack size"): read the
 * parent's template together with theirs (`withNestedStacks`), so that a route's integration, which
 * names its function through a nested stack parameter, leads back to the function in the parent.
 */

export interface CdkInventory {
  /** Topology function names. */
  functions: string[];
  /** `METHOD /path`, e.g. `GET /v1/ping/{id}`. */
  routes: string[];
  /**
   * Per route: the function behind its Lambda integration and its auth: behind the authorizer,
   * `ops` under /ops/ (the authorizer's policy gives ops keys those paths only), else `merchant`.
   */
  routeTargets: { route: string; function: string; auth: 'merchant' | 'ops' | 'none' }[];
  /** The function behind the API's request authorizer. */
  authorizer: string | undefined;
  stateMachines: string[];
  tables: string[];
  /** Topology queues (not their dead-letter queues, see `deadLetterQueues`). */
  queues: string[];
  deadLetterQueues: string[];
  buckets: string[];
  schedules: string[];
  secrets: string[];
  /** `table:<name> -> <function>` (stream) and `queue:<name> -> <function>`. */
  eventSources: string[];
}

interface CfnResourceJson {
  Type: string;
  Properties?: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
}
export interface TemplateJson {
  Resources?: Record<string, CfnResourceJson>;
  Parameters?: Record<string, unknown>;
  Outputs?: Record<string, unknown>;
}

/** Replaces `{ Ref: <parameter> }` anywhere in `value` by what `values` gives for the parameter. */
function substitute(value: unknown, values: Record<string, unknown>): unknown {
  if (Array.isArray(value)) return value.map((v) => substitute(v, values));
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (typeof o.Ref === 'string' && Object.keys(o).length === 1 && o.Ref in values) return values[o.Ref];
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, substitute(v, values)]));
  }
  return value;
}

/**
 * One template of a parent stack and its nested stacks (`nested`: each nested stack's template by
 * the logical id of its `AWS::CloudFormation::Stack` resource in the parent): the nested stacks'
 * resources are added to the parent's, their parameters replaced by the values the parent passes
 * (references to the parent's resources). A logical id used twice is an error.
 */
export function withNestedStacks(parent: TemplateJson, nested: Record<string, TemplateJson>): TemplateJson {
  const resources: Record<string, CfnResourceJson> = { ...parent.Resources };
  for (const [stackId, child] of Object.entries(nested)) {
    const stack = parent.Resources?.[stackId];
    if (stack?.Type !== 'AWS::CloudFormation::Stack')
      throw new Error(`withNestedStacks: ${stackId} is not a nested stack of the parent template`);
    const values = (stack.Properties?.Parameters ?? {}) as Record<string, unknown>;
    for (const [id, r] of Object.entries(child.Resources ?? {})) {
      if (id in resources) throw new Error(`withNestedStacks: logical id ${id} is used twice`);
      resources[id] = substitute(r, values) as CfnResourceJson;
    }
  }
  return { ...parent, Resources: resources };
}

const KIND = 'paystep:kind';
const NAME = 'paystep:name';

/** Logical ids referenced by `Ref` / `Fn::GetAtt` anywhere inside `value`. */
function references(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) references(v, out);
  else if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (typeof o.Ref === 'string') out.push(o.Ref);
    const getAtt = o['Fn::GetAtt'];
    if (Array.isArray(getAtt) && typeof getAtt[0] === 'string') out.push(getAtt[0]);
    for (const v of Object.values(o)) references(v, out);
  }
  return out;
}

/** Accepts an `aws-cdk-lib/assertions` Template (anything with `toJSON()`) or the template object. */
export function cdkInventory(template: TemplateJson | { toJSON(): Record<string, unknown> }): CdkInventory {
  const json = (
    'toJSON' in template && typeof template.toJSON === 'function' ? template.toJSON() : template
  ) as TemplateJson;
  const resources = json.Resources ?? {};

  const named = new Map<string, { kind: string; name: string }>();
  for (const [id, r] of Object.entries(resources)) {
    const kind = r.Metadata?.[KIND];
    const name = r.Metadata?.[NAME];
    if (typeof kind === 'string' && typeof name === 'string') named.set(id, { kind, name });
  }
  const namesOf = (kind: string) =>
    [...named.values()]
      .filter((n) => n.kind === kind)
      .map((n) => n.name)
      .sort();
  const nameOf = (id: string, kind: string) =>
    named.get(id)?.kind === kind ? named.get(id)!.name : undefined;
  const firstNamed = (value: unknown, kind: string) =>
    references(value)
      .map((id) => nameOf(id, kind))
      .find((n): n is string => n !== undefined);

  // API Gateway: a Resource has a PathPart and a ParentId (another Resource, or the RestApi's root).
  const pathOf = (resourceId: unknown): string => {
    const ref = references(resourceId)[0];
    const r = ref === undefined ? undefined : resources[ref];
    if (!r || r.Type !== 'AWS::ApiGateway::Resource') return ''; // the root resource (Fn::GetAtt RootResourceId)
    return `${pathOf(r.Properties?.ParentId)}/${String(r.Properties?.PathPart)}`;
  };

  const routeTargets: CdkInventory['routeTargets'] = [];
  let authorizer: string | undefined;
  const eventSources: string[] = [];
  for (const r of Object.values(resources)) {
    const p = r.Properties ?? {};
    if (r.Type === 'AWS::ApiGateway::Method' && p.HttpMethod !== 'OPTIONS') {
      const path = pathOf(p.ResourceId) || '/';
      const route = `${String(p.HttpMethod)} ${path}`;
      const integration = p.Integration as { Uri?: unknown } | undefined;
      routeTargets.push({
        route,
        function: firstNamed(integration?.Uri, 'function') ?? '?',
        auth: p.AuthorizationType !== 'CUSTOM' ? 'none' : path.startsWith('/ops/') ? 'ops' : 'merchant',
      });
    } else if (r.Type === 'AWS::ApiGateway::Authorizer') {
      authorizer = firstNamed(p.AuthorizerUri, 'function');
    } else if (r.Type === 'AWS::Lambda::EventSourceMapping') {
      const target = firstNamed(p.FunctionName, 'function') ?? '?';
      const table = firstNamed(p.EventSourceArn, 'table');
      const queue = firstNamed(p.EventSourceArn, 'queue');
      if (table) eventSources.push(`table:${table} -> ${target}`);
      else if (queue) eventSources.push(`queue:${queue} -> ${target}`);
      else eventSources.push(`? -> ${target}`);
    }
  }
  routeTargets.sort((a, b) => a.route.localeCompare(b.route));

  return {
    functions: namesOf('function'),
    routes: routeTargets.map((r) => r.route),
    routeTargets,
    authorizer,
    stateMachines: namesOf('state-machine'),
    tables: namesOf('table'),
    queues: namesOf('queue'),
    deadLetterQueues: namesOf('dead-letter-queue'),
    buckets: namesOf('bucket'),
    schedules: namesOf('schedule'),
    secrets: namesOf('secret'),
    eventSources: eventSources.sort(),
  };
}
