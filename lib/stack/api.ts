/**
 * The REST API, in a nested stack of its own (docs/architecture.md "Stack size"): the RestApi, its
 * resources and methods, the request authorizer, the Lambda invoke permissions, gateway responses,
 * request validator, deployment and stage, and the stage's access log group. The functions stay in
 * the parent stack; CloudFormation passes their ARNs in as parameters of this one.
 */
import { Duration, NestedStack } from 'aws-cdk-lib';
import type { NestedStackProps } from 'aws-cdk-lib';
import {
  AccessLogFormat,
  AuthorizationType,
  EndpointType,
  IdentitySource,
  LambdaIntegration,
  LogGroupLogDestination,
  RequestAuthorizer,
  ResponseType,
  RestApi,
} from 'aws-cdk-lib/aws-apigateway';
import type { Method } from 'aws-cdk-lib/aws-apigateway';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import type { PaystepFunction } from '../function.ts';
import type { Topology } from '../topology.ts';
import { acknowledge, mark, pascal } from './common.ts';

/**
 * API Gateway's own responses (authorizer refusals, unknown routes, throttling, body validation) in the
 * paystep error shape `{"error":{"type","code","message"}}`. Without `message`, API Gateway's message is used.
 */
export const GATEWAY_ERRORS: {
  type: ResponseType;
  statusCode?: string;
  errorType: string;
  code: string;
  message?: string;
}[] = [
  // Missing header, or the authorizer said "Unauthorized" or returned a Deny: the key is missing or wrong.
  {
    type: ResponseType.UNAUTHORIZED,
    statusCode: '401',
    errorType: 'authentication_error',
    code: 'invalid_api_key',
    message: 'Missing or invalid API key (Authorization: Bearer <key>).',
  },
  {
    type: ResponseType.ACCESS_DENIED,
    statusCode: '401',
    errorType: 'authentication_error',
    code: 'invalid_api_key',
    message: 'Missing or invalid API key (Authorization: Bearer <key>).',
  },
  // API Gateway answers an unknown path or method with 403 "Missing Authentication Token"; paystep says 404.
  {
    type: ResponseType.MISSING_AUTHENTICATION_TOKEN,
    statusCode: '404',
    errorType: 'not_found',
    code: 'route_not_found',
    message: 'No such route.',
  },
  {
    type: ResponseType.THROTTLED,
    statusCode: '429',
    errorType: 'rate_limit_error',
    code: 'rate_limited',
    message: 'Too many requests; retry later.',
  },
  { type: ResponseType.DEFAULT_4XX, errorType: 'invalid_request_error', code: 'invalid_request' },
  { type: ResponseType.DEFAULT_5XX, errorType: 'api_error', code: 'internal_error' },
];

export interface ApiStackProps extends NestedStackProps {
  topology: Topology;
  /** The parent stack's functions, by topology name. */
  functions: ReadonlyMap<string, PaystepFunction>;
}

export class ApiStack extends NestedStack {
  readonly api: RestApi;

  constructor(scope: Construct, id: string, props: ApiStackProps) {
    super(scope, id, {
      description: 'paystep REST API (routes, authorizer, stage)',
      ...props,
    });
    const t = props.topology;
    const fn = (name: string): PaystepFunction => {
      const f = props.functions.get(name);
      if (!f) throw new Error(`unknown function ${name}`);
      return f;
    };

    const accessLogs = new LogGroup(this, 'ApiAccessLogs', { retention: RetentionDays.ONE_MONTH });
    const api = new RestApi(this, 'Api', {
      restApiName: 'paystep',
      description: 'paystep public API',
      endpointTypes: [EndpointType.REGIONAL],
      cloudWatchRole: false,
      deployOptions: {
        stageName: 'prod',
        accessLogDestination: new LogGroupLogDestination(accessLogs),
        accessLogFormat: AccessLogFormat.jsonWithStandardFields(),
        tracingEnabled: true,
        metricsEnabled: true,
        throttlingRateLimit: t.api.throttle.rateLimit,
        throttlingBurstLimit: t.api.throttle.burstLimit,
      },
    });
    this.api = api;
    mark(api, 'api', 'paystep');
    acknowledge(
      api.deploymentStage,
      'AwsSolutions-APIG3',
      'No WAF web ACL yet: every merchant route needs an API key checked by the authorizer, the stage is ' +
        'throttled, and webhooks are signature-verified. A regional web ACL is a per-account deployment choice.',
    );
    acknowledge(
      api.deploymentStage,
      'AwsSolutions-APIG6',
      'Execution logging needs the account-wide API Gateway CloudWatch role, which this stack must not own ' +
        '(one per account and region). JSON access logs and X-Ray traces are on for the stage.',
    );

    for (const r of GATEWAY_ERRORS) {
      const message = r.message === undefined ? '$context.error.messageString' : JSON.stringify(r.message);
      const body = `{"error":{"type":"${r.errorType}","code":"${r.code}","message":${message}}}`;
      api.addGatewayResponse(`${pascal(r.type.responseType.toLowerCase())}Response`, {
        type: r.type,
        statusCode: r.statusCode,
        templates: { 'application/json': body },
      });
    }

    const validator = api.addRequestValidator('RequestValidator', {
      requestValidatorName: 'body-and-parameters',
      validateRequestBody: true,
      validateRequestParameters: true,
    });

    const authorizer = new RequestAuthorizer(this, 'MerchantAuthorizer', {
      authorizerName: 'merchant-api-key',
      handler: fn(t.authorizer.function).fn,
      identitySources: [IdentitySource.header('Authorization')],
      resultsCacheTtl: Duration.seconds(t.authorizer.cacheTtlSeconds),
    });

    const integrations = new Map<string, LambdaIntegration>();
    for (const route of t.routes) {
      const f = fn(route.function);
      let integration = integrations.get(route.function);
      if (!integration) {
        // One invoke permission per function, scoped to this API (any of its methods), rather than
        // one per method: a function serving several routes (GET and POST of a resource, the ops
        // actions) would otherwise cost a resource per route. The API is paystep's own; its routes
        // are the topology's.
        integration = new LambdaIntegration(f.fn, { proxy: true, scopePermissionToMethod: false });
        integrations.set(route.function, integration);
      }
      const resource = api.root.resourceForPath(route.path);
      const pathParams = [...route.path.matchAll(/\{([^}+]+)\+?\}/g)].map((m) => m[1]!);
      const requestParameters = Object.fromEntries(pathParams.map((p) => [`method.request.path.${p}`, true]));
      const method: Method = resource.addMethod(route.method, integration, {
        requestValidator: validator,
        requestParameters,
        ...(route.auth !== 'none'
          ? { authorizer, authorizationType: AuthorizationType.CUSTOM }
          : { authorizationType: AuthorizationType.NONE }),
      });
      acknowledge(
        method,
        'AwsSolutions-COG4',
        'paystep authenticates merchants with their API keys through a Lambda request authorizer, not ' +
          'Cognito user pools (machine-to-machine API, Stripe-like).',
      );
      if (route.auth === 'none')
        acknowledge(
          method,
          'AwsSolutions-APIG4',
          `${route.method} ${route.path} is called by a payment processor, which cannot hold a merchant key; ` +
            'the handler verifies the signature of the raw body instead.',
        );
    }
  }
}
