/**
 * Conditional writes: every Put, Update or Delete with a `ConditionExpression` whose failed
 * condition is an answer (already there, already moved on, someone else won) rather than an error
 * goes through these, so no store writes its own `try … catch (ConditionalCheckFailedException)`.
 * Any other error is thrown as it is.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
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

/** Puts a new item unless an item with its key exists; false if one did (nothing written). */
export function putIfAbsent(tableName: string, item: Item): Promise<boolean> {
  return conditionalWrite(
    new PutCommand({ TableName: tableName, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }),
  );
}
