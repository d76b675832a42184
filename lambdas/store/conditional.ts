/**
 * Conditional writes: every Put, Update or Delete with a `ConditionExpression` whose failed
 * condition is an answer (already there, already moved on, someone else won) rather than an error
 * goes through these, so no store writes its own `try … catch (ConditionalCheckFailedException)`.
 * Any other error is thrown as it is.
 */
import { ConditionalCheckFailedException, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import {
  PutCommand,
  type DeleteCommand,
  type UpdateCommand,
  type UpdateCommandOutput,
} from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';

type Item = Record<string, unknown>;

/** Whether `err` is DynamoDB's "the condition was not met" (by class, or by name across SDK copies). */
export const isConditionFailure = (err: unknown): boolean =>
  err instanceof ConditionalCheckFailedException ||
  (err as { name?: unknown } | null)?.name === 'ConditionalCheckFailedException';

/** Sends the write; false when its condition was not met (nothing was written). */
export async function conditionalWrite(cmd: PutCommand | UpdateCommand | DeleteCommand): Promise<boolean> {
  try {
    // One client, three command types: the union does not narrow `send`'s overloads.
    await clients.ddb().send(cmd as UpdateCommand);
    return true;
  } catch (err) {
    if (isConditionFailure(err)) return false;
    throw err;
  }
}

/**
 * Sends the update; its `Attributes` (as asked by `ReturnValues`, `{}` when none were asked), or
 * undefined when its condition was not met (nothing was written).
 */
export async function conditionalUpdate(cmd: UpdateCommand): Promise<Item | undefined> {
  let out: UpdateCommandOutput;
  try {
    out = await clients.ddb().send(cmd);
  } catch (err) {
    if (isConditionFailure(err)) return undefined;
    throw err;
  }
  return (out.Attributes as Item | undefined) ?? {};
}

/**
 * Sends the update asking, should its condition fail, for the item it was checked against
 * (`ReturnValuesOnConditionCheckFailure: ALL_OLD`): written, with its `Attributes` (as its
 * `ReturnValues` asks); or not, with the item as it is (undefined when there is none). A failed
 * condition thus answers what a read would have, with no read.
 */
export async function updateOrCurrent(cmd: UpdateCommand): Promise<{ written: boolean; item?: Item }> {
  cmd.input.ReturnValuesOnConditionCheckFailure = 'ALL_OLD';
  try {
    const out = await clients.ddb().send(cmd);
    return { written: true, item: out.Attributes as Item | undefined };
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
    // The document client leaves the failed condition's item as DynamoDB sent it (attribute values).
    const raw = (err as { Item?: Record<string, AttributeValue> }).Item;
    return { written: false, item: raw ? unmarshall(raw) : undefined };
  }
}

/**
 * `updateOrCurrent` with `ReturnValues: ALL_OLD`: whether it wrote, and the item as it was just
 * before (what the write changed, or what its condition was checked against), read atomically with
 * the write; `old` is undefined when there was no item. The caller decides from `old` exactly what
 * it would have decided from a read before the write.
 */
export async function updateReturningOld(cmd: UpdateCommand): Promise<{ written: boolean; old?: Item }> {
  cmd.input.ReturnValues = 'ALL_OLD';
  const { written, item } = await updateOrCurrent(cmd);
  return { written, old: item };
}

/** Puts a new item unless an item with its key exists; false if one did (nothing written). */
export function putIfAbsent(tableName: string, item: Item): Promise<boolean> {
  return conditionalWrite(
    new PutCommand({ TableName: tableName, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }),
  );
}
