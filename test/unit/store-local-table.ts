/**
 * The `main` table of the topology (its indexes included) on a local DynamoDB, with the handlers'
 * environment pointing at it, for the store unit tests: what the stores read and write goes to a
 * real DynamoDB implementation (Limit, LastEvaluatedKey, conditions, sparse indexes).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LocalDynamo } from '../../lib/local/dynamodb.ts';
import { envVarFor, topology, type TableDef } from '../../lib/topology.ts';
import { resetClients } from '../../lambdas/shared/aws.ts';

const VARS = ['AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_ENDPOINT_URL_DYNAMODB'];

export interface LocalTable {
  name: string;
  stop(): Promise<void>;
}

/** `def`: the table as declared (default: the topology's `main`, e.g. without an index to test a table from before it). */
export async function startLocalTable(def: TableDef = topology.tables.main!): Promise<LocalTable> {
  const dir = mkdtempSync(path.join(tmpdir(), 'paystep-store-'));
  const name = 'paystep-main';
  const dyn = new LocalDynamo({
    dataDir: dir,
    tables: { main: def },
    tableName: (n) => `paystep-${n}`,
    deliver: async () => undefined,
    sendToFailureQueue: async () => undefined,
  });
  const endpoint = await dyn.start();
  const saved = Object.fromEntries([...VARS, envVarFor.table('main')].map((k) => [k, process.env[k]]));
  Object.assign(process.env, {
    AWS_REGION: 'local',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_DYNAMODB: endpoint,
    [envVarFor.table('main')]: name,
  });
  resetClients();
  return {
    name,
    async stop() {
      resetClients();
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      await dyn.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
