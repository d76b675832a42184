/** GET /v1/ping/{id} — a ping as the merchant sees it; another merchant's ping is a 404. */
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { notFound } from '../shared/errors.ts';
import { httpHandler } from '../shared/http.ts';
import { pathId } from '../shared/input.ts';

export const handler = httpHandler(async (req) => {
  const id = pathId(req, 'ping');
  const out = await clients
    .ddb()
    .send(new GetCommand({ TableName: config.tableName('main'), Key: { pk: `PING#${id}`, sk: 'PING' } }));
  const item = out.Item;
  if (!item || item.merchant_id !== req.merchantId) throw notFound('ping', id);
  return {
    status: 200,
    body: {
      id,
      object: 'ping',
      status: item.status,
      message: item.message,
      report_key: item.report_key ?? null,
      created: item.created,
      updated: item.updated,
    },
  };
});
