/**
 * The two runtimes cannot drift: the CDK template (read back from the template itself) and the
 * running local runtime (asked of its services) contain exactly the same functions, routes,
 * state machines, tables, queues, dead-letter queues, buckets and schedules — and both match
 * the topology.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cdkInventory } from '../../lib/inventory.ts';
import { startRuntime, type LocalInventory, type Runtime } from '../../lib/local/runtime.ts';
import { dlqName, topology } from '../../lib/topology.ts';
import { synthPaystep } from './synth.ts';

describe('topology parity between the CDK stack and the local runtime', () => {
  let dir: string;
  let rt: Runtime;
  let local: LocalInventory;
  let cdk: ReturnType<typeof cdkInventory>;

  beforeAll(async () => {
    cdk = cdkInventory(synthPaystep().template);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-parity-'));
    rt = await startRuntime({ dataDir: dir, port: 0 });
    local = await rt.inventory();
  });
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
});
