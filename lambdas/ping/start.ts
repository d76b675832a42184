/**
 * POST /v1/ping — starts the ping workflow, the platform's end-to-end self-test: API → authorizer
 * → Step Functions → DynamoDB → stream → queue → S3 → task token → workflow completion.
 * Body (optional): {"message": string ≤ 200 chars}. Answers 202 with the ping id.
 */
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { z } from 'zod';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { invalidRequest } from '../shared/errors.ts';
import { httpHandler } from '../shared/http.ts';
import { newId } from '../shared/ids.ts';

const Body = z.strictObject({ message: z.string().max(200).optional() }).optional();

export const handler = httpHandler(async (req) => {
  const parsed = Body.safeParse(req.body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const param =
      issue.path.join('.') || (issue.code === 'unrecognized_keys' ? issue.keys.join(',') : undefined);
    throw invalidRequest('parameter_invalid', issue.message, param);
  }
  const id = newId('png');
  const input = { ping_id: id, merchant_id: req.merchantId, message: parsed.data?.message ?? 'ping' };
  const out = await clients.sfn().send(
    new StartExecutionCommand({
      stateMachineArn: config.stateMachineArn('ping'),
      name: id,
      input: JSON.stringify(input),
    }),
  );
  return { status: 202, body: { id, object: 'ping', status: 'started', execution_arn: out.executionArn } };
});
