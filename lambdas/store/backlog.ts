/**
 * The incident backlog (docs/routing.md "The backlog"): operations held while their processor is
 * in an `open` incident (lambdas/domain/backlog.ts). Items (table `main`), beside their incident:
 *   pk INCIDENT#<incident>   sk HELD#<kind>#<payment or refund id>   kind `held-operation`
 * The key is the operation itself, so holding it again (a retried step, a workflow that re-checks
 * after its wait timed out, a crash and restart) keeps one entry: the first hold's time and its
 * place in the replay order stay; only the waiting workflow's task token is refreshed.
 *
 * Status changes are conditional updates: held → released (handed back to its workflow) → done |
 * failed. A release done twice finds the entry released or finished and moves nothing more.
 * The task token is internal: it never leaves this store except to resume the workflow.
 */
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { replayOrder, type HeldKind, type HeldOperation } from '../domain/backlog.ts';
import { conditionalUpdate, conditionalWrite } from './conditional.ts';
import { withoutInternal } from './items.ts';
import { queryAll } from './pages.ts';

const table = () => config.tableName('main');
const pk = (incidentId: string) => `INCIDENT#${incidentId}`;
const sk = (kind: HeldKind, targetId: string) => `HELD#${kind}#${targetId}`;

/** The held entry's id: one per operation and incident. */
export const heldId = (incidentId: string, kind: HeldKind, targetId: string) =>
  `${incidentId}#${kind}#${targetId}`;

/** What a step knows when it holds an operation. */
export type HoldRequest = Omit<HeldOperation, 'id' | 'status' | 'released_at' | 'finished_at' | 'outcome'>;

/** Internal attributes: the operation's kind is stored as `operation` (`kind` is the item's own). */
const INTERNAL = ['operation', 'task_token', 'task_token_at'] as const;

function fromItem(item: Record<string, unknown>): HeldOperation {
  return { ...withoutInternal(item, INTERNAL), kind: item.operation } as unknown as HeldOperation;
}

const targetOf = (r: Pick<HeldOperation, 'kind' | 'payment_id' | 'refund_id'>) =>
  r.kind === 'refund' ? r.refund_id! : r.payment_id;

/**
 * Holds the operation in the incident's backlog: a new entry, or the one already there (same
 * incident, kind and payment or refund). With `taskToken` (the waiting workflow's), the entry
 * remembers it so the release resumes that workflow. `created` says whether this call held it.
 */
export async function holdOperation(
  req: HoldRequest,
  taskToken?: string,
): Promise<{ held: HeldOperation; created: boolean }> {
  if (req.kind === 'refund' && !req.refund_id) throw new Error('a held refund needs its refund_id');
  const target = targetOf(req);
  const id = heldId(req.incident_id, req.kind, target);
  const key = { pk: pk(req.incident_id), sk: sk(req.kind, target) };
  const { kind, ...rest } = req;
  const created = await conditionalWrite(
    new PutCommand({
      TableName: table(),
      Item: {
        ...key,
        kind: 'held-operation',
        ...rest,
        operation: kind,
        id,
        status: 'held',
        ...(taskToken ? { task_token: taskToken, task_token_at: Date.now() } : {}),
      },
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  );
  // A finished entry keeps no token: nothing would resume it (the wait's own re-check does).
  if (!created && taskToken)
    await conditionalWrite(
      new UpdateCommand({
        TableName: table(),
        Key: key,
        UpdateExpression: 'SET task_token = :t, task_token_at = :at',
        ConditionExpression: '#s IN (:held, :released)',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: {
          ':t': taskToken,
          ':at': Date.now(),
          ':held': 'held',
          ':released': 'released',
        },
      }),
    );
  const item = (
    await clients.ddb().send(new GetCommand({ TableName: table(), Key: key, ConsistentRead: true }))
  ).Item;
  if (!item) throw new Error(`held operation ${id} disappeared`);
  return { held: fromItem(item), created };
}

/** Every operation held in the incident's backlog (whatever its status), in replay order. */
export async function listHeld(incidentId: string): Promise<HeldOperation[]> {
  const out = await queryAll({
    TableName: table(),
    KeyConditionExpression: 'pk = :pk AND begins_with(sk, :held)',
    ExpressionAttributeValues: { ':pk': pk(incidentId), ':held': 'HELD#' },
    ConsistentRead: true,
  });
  return replayOrder(out.map(fromItem));
}

/** The task token of the workflow waiting on the held operation, if it stored one. */
export async function heldTaskToken(
  held: Pick<HeldOperation, 'incident_id' | 'kind' | 'payment_id' | 'refund_id'>,
) {
  const r = await clients.ddb().send(
    new GetCommand({
      TableName: table(),
      Key: { pk: pk(held.incident_id), sk: sk(held.kind, targetOf(held)) },
      ConsistentRead: true,
    }),
  );
  return r.Item?.task_token as string | undefined;
}

/**
 * held → released. False when the entry was not `held` (released already, or finished): the
 * release of that one was done before.
 */
export async function markReleased(held: HeldOperation, at = Date.now()): Promise<boolean> {
  return conditionalWrite(
    new UpdateCommand({
      TableName: table(),
      Key: { pk: pk(held.incident_id), sk: sk(held.kind, targetOf(held)) },
      UpdateExpression: 'SET #s = :released, released_at = :at',
      ConditionExpression: '#s = :held',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: { ':released': 'released', ':held': 'held', ':at': at },
    }),
  );
}

/**
 * held | released → done | failed, with what the replay ended in, in words. Undefined when the
 * entry was finished already (its first outcome stays).
 */
export async function finishHeld(
  held: HeldOperation,
  status: 'done' | 'failed',
  outcome: string,
  at = Date.now(),
): Promise<HeldOperation | undefined> {
  const item = await conditionalUpdate(
    new UpdateCommand({
      TableName: table(),
      Key: { pk: pk(held.incident_id), sk: sk(held.kind, targetOf(held)) },
      UpdateExpression:
        'SET #s = :to, finished_at = :at, outcome = :outcome, released_at = if_not_exists(released_at, :at) REMOVE task_token',
      ConditionExpression: '#s IN (:held, :released)',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: {
        ':to': status,
        ':at': at,
        ':outcome': outcome,
        ':held': 'held',
        ':released': 'released',
      },
      ReturnValues: 'ALL_NEW',
    }),
  );
  return item ? fromItem(item) : undefined;
}
