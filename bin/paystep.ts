/**
 * CDK app: `npx cdk synth` / `npx cdk deploy` (cdk.json runs this file with Node 24 type stripping).
 *
 * cdk-nag v3 is a policy validation plugin (it replaced v2's `Aspects.of(app).add(...)`): synthesis fails on
 * any AwsSolutions finding that lib/stack.ts neither fixes nor acknowledges. The acknowledgements are also
 * written to each resource's CloudFormation Metadata (`cdk_nag.rules_to_suppress`) as an audit trail.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { PaystepStack } from '../lib/stack.ts';

// `cdk synth --quiet` prints nothing when all is well. CDK announces every asset it bundles on stderr
// ("Bundling asset Paystep/…/Code/Stage...", once per function); those lines are left out here, and
// esbuild's own summary is off (lib/function.ts). Errors and warnings still print.
const stderrWrite = process.stderr.write.bind(process.stderr) as (...args: unknown[]) => boolean;
process.stderr.write = ((chunk: unknown, ...rest: unknown[]) =>
  typeof chunk === 'string' && chunk.startsWith('Bundling asset ')
    ? true
    : stderrWrite(chunk, ...rest)) as typeof process.stderr.write;

const app = new App();
new PaystepStack(app, 'Paystep', {
  description: 'paystep: serverless payment platform',
  env:
    process.env.CDK_DEFAULT_ACCOUNT || process.env.CDK_DEFAULT_REGION
      ? { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION }
      : undefined,
});
Validations.of(app).addPlugins(
  new AwsSolutionsChecks(app, { verbose: true, writeSuppressionsToCloudFormation: true }),
);
app.synth();
