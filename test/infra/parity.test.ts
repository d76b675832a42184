/**
 * The two runtimes cannot drift: the CDK template (read back from the template itself) and the
 * running local runtime (asked of its services) contain exactly the same functions, routes,
 * state machines, tables, queues, dead-letter queues, buckets and schedules — and both match
 * the topology; and given the same deployment settings (topology `config`), both set them on
 * every function under the same variables.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cdkInventory } from '../../lib/inventory.ts';
import { startRuntime, type LocalInventory, type Runtime } from '../../lib/local/runtime.ts';
import { dlqName, topology } from '../../lib/topology.ts';
import { Template } from 'aws-cdk-lib/assertions';
import { PaystepStack } from '../../lib/stack.ts';
import { newApp, synthPaystep } from './synth.ts';

describe('topology parity between the CDK stack and the local runtime', () => {
  let dir: string;
  let rt: Runtime;
  let local: LocalInventory;
  let cdk: ReturnType<typeof cdkInventory>;

  beforeAll(async () => {
    cdk = cdkInventory(synthPaystep().all); // the parent with its nested stacks (the API)
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-parity-'));
    rt = await startRuntime({ dataDir: dir, port: 0 });
    local = await rt.inventory();
  }, 90_000); // a synth and a runtime start: slow on a loaded 2-core machine
  afterAll(async () => {
    await rt?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const sorted = (xs: string[]) => [...xs].sort();

  test.each([
    'functions',
    'routes',
    'stateMachines',
    'tables',
    'queues',
    'deadLetterQueues',
    'buckets',
    'schedules',
  ] as const)('%s are the same in both runtimes', (kind) => {
    const expected: Record<string, string[]> = {
      functions: Object.keys(topology.functions),
      routes: topology.routes.map((r) => `${r.method} ${r.path}`),
      stateMachines: Object.keys(topology.stateMachines),
      tables: Object.keys(topology.tables),
      queues: Object.keys(topology.queues),
      deadLetterQueues: Object.keys(topology.queues).map(dlqName),
      buckets: Object.keys(topology.buckets),
      schedules: Object.keys(topology.schedules),
    };
    expect(sorted(local[kind])).toEqual(sorted(cdk[kind]));
    expect(sorted(local[kind])).toEqual(sorted(expected[kind]!));
    expect(local[kind].length).toBeGreaterThan(0);
  });

  test('deployment settings (topology config) reach every function as the same variables', () => {
    const settings = Object.values(topology.config ?? {});
    expect(settings.map((c) => c.env).sort()).toEqual([
      'ADYEN_MERCHANT_ACCOUNT',
      'PAYSTEP_CONSOLE_SECURE_COOKIES',
      'PAYSTEP_PROCESSORS',
    ]);
    // The local runtime set them in the process (its handlers' environment) when it started.
    const localValues = Object.fromEntries(settings.map((c) => [c.env, process.env[c.env]]));
    for (const c of settings) expect(localValues[c.env]).toBeTruthy();
    const app = newApp({ context: Object.fromEntries(settings.map((c) => [c.context, localValues[c.env]])) });
    const resources = Template.fromStack(new PaystepStack(app, 'Settings')).toJSON().Resources as Record<
      string,
      { Type: string; Properties: { Environment?: { Variables: Record<string, unknown> } } }
    >;
    const fns = Object.values(resources).filter((r) => r.Type === 'AWS::Lambda::Function');
    expect(fns).toHaveLength(Object.keys(topology.functions).length);
    for (const f of fns) expect(f.Properties.Environment?.Variables).toMatchObject(localValues);
  });
});
