/** The `webhooks` queue: a pointer to a stored event, put by the route and by replays. */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';

/** The message put on the `webhooks` queue: a pointer to the stored event. */
export interface WebhookMessage {
  processor: string;
  event_id: string;
}

export async function enqueueWebhookEvent(processor: string, eventId: string): Promise<void> {
  const message: WebhookMessage = { processor, event_id: eventId };
  await clients
    .sqs()
    .send(
      new SendMessageCommand({ QueueUrl: config.queueUrl('webhooks'), MessageBody: JSON.stringify(message) }),
    );
}
