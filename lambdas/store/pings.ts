/**
 * Pings, the platform self-test (lambdas/ping/), in DynamoDB (table `main`):
 *
 *   pk PING#<png_id>  sk PING   { id, merchant_id, message, status, task_token, report_key?, created, updated }
 *       gsi1pk MERCHANT#<merchant>#PING  gsi1sk <created s>#<id>
 *
 * `recorded` → `reported` (the report is written) → `complete`. Every write is conditional, so a
 * retried or redelivered step changes nothing and a status never moves backwards.
 */
import { GetCommand, UpdateCommand, type GetCommandOutput } from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { conditionalWrite, putIfAbsent } from './conditional.ts';
import { statusIn, updateExpression } from './expressions.ts';

export type PingStatus = 'recorded' | 'reported' | 'complete';

const table = () => config.tableName('main');
const key = (id: string) => ({ pk: `PING#${id}`, sk: 'PING' });

/** Stores the ping with the token its workflow waits on; false if it was stored before. */
export async function recordPing(p: {
  id: string;
  merchantId: string;
  message: string;
  taskToken: string;
}): Promise<boolean> {
  const now = Math.floor(Date.now() / 1000);
  return putIfAbsent(table(), {
    ...key(p.id),
    kind: 'ping',
    id: p.id,
    merchant_id: p.merchantId,
    message: p.message,
    status: 'recorded',
    task_token: p.taskToken,
    created: now,
    updated: now,
    gsi1pk: `MERCHANT#${p.merchantId}#PING`,
    gsi1sk: `${now}#${p.id}`,
  });
}

/** The ping item as stored (its task token included). */
export async function getPingItem(id: string): Promise<GetCommandOutput['Item']> {
  const out = await clients.ddb().send(new GetCommand({ TableName: table(), Key: key(id) }));
  return out.Item;
}

/**
 * Moves the ping to `to` with its report's key, only from one of `from`; false when it was not
 * in one of them (done before). `remove` names attributes dropped in the same write.
 */
export async function movePing(
  id: string,
  to: PingStatus,
  from: PingStatus[],
  reportKey: string,
  remove: string[] = [],
): Promise<boolean> {
  return conditionalWrite(
    new UpdateCommand({
      TableName: table(),
      Key: key(id),
      ...updateExpression(
        { status: to, report_key: reportKey, updated: Math.floor(Date.now() / 1000) },
        remove,
        { condition: statusIn(from) },
      )!,
    }),
  );
}
