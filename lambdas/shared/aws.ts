/**
 * AWS SDK clients, created once per container. Endpoints and region come from the environment
 * (AWS_REGION, AWS_ENDPOINT_URL_<SERVICE>), which is how the local runtime points the same code at
 * its local services: there is no "local mode" in handler code.
 */
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { config } from './config.ts';

/**
 * SDK request handlers that a local runtime running in this process registers for its endpoints
 * (lib/local/dynamodb-inprocess.ts): a client for such an endpoint hands its requests to the local
 * service directly instead of over a socket, signed by the handler's signer (the SigV4 headers
 * without the cryptography: no local service verifies a signature). Serialization, retries and the
 * service's answers are the same; in AWS, or in a process without a runtime, there is none and the
 * client is the default one.
 */
const IN_PROCESS_HANDLERS = Symbol.for('paystep.local.requestHandlers');

type Signer = NonNullable<DynamoDBClientConfig['httpAuthSchemes']>[number]['signer'];

function inProcessConfig(endpoint: string | undefined): DynamoDBClientConfig {
  if (!endpoint) return {};
  const handlers = (globalThis as { [IN_PROCESS_HANDLERS]?: Map<string, unknown> })[IN_PROCESS_HANDLERS];
  const handler = handlers?.get(endpoint) as
    (NonNullable<DynamoDBClientConfig['requestHandler']> & { signer?: Signer }) | undefined;
  if (!handler) return {};
  return {
    requestHandler: handler,
    ...(handler.signer && {
      httpAuthSchemes: [
        {
          schemeId: 'aws.auth#sigv4',
          identityProvider: (ipc) => ipc.getIdentityProvider('aws.auth#sigv4'),
          signer: handler.signer,
        },
      ],
    }),
  };
}

let ddb: DynamoDBDocumentClient | undefined;
let s3: S3Client | undefined;
let sfn: SFNClient | undefined;
let sqs: SQSClient | undefined;
let secrets: SecretsManagerClient | undefined;

export const clients = {
  ddb: () => {
    if (!ddb) {
      ddb = DynamoDBDocumentClient.from(new DynamoDBClient(inProcessConfig(config.dynamodbEndpoint())), {
        marshallOptions: { removeUndefinedValues: true },
      });
    }
    return ddb;
  },
  s3: () => (s3 ??= new S3Client({})),
  sfn: () => (sfn ??= new SFNClient({})),
  sqs: () => (sqs ??= new SQSClient({})),
  secrets: () => (secrets ??= new SecretsManagerClient({})),
};

/**
 * Forgets the clients, so the next use reads endpoints from the environment again. Only a host
 * that changes endpoints within one process needs it (the local runtime, restarted in tests).
 */
export function resetClients(): void {
  ddb = undefined;
  s3 = undefined;
  sfn = undefined;
  sqs = undefined;
  secrets = undefined;
}
