/** Stream consumer: a newly recorded ping goes to the reports queue (the self-test's queue hop). */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import type { StreamConsumer } from '../stream/consumers.ts';

export const pingConsumer: StreamConsumer = {
  name: 'ping',
  async handle({ eventName, newImage }) {
    if (eventName !== 'INSERT' || newImage?.kind !== 'ping') return;
    await clients.sqs().send(
      new SendMessageCommand({
        QueueUrl: config.queueUrl('reports'),
        MessageBody: JSON.stringify({ type: 'ping.recorded', ping_id: newImage.id }),
      }),
    );
  },
};
