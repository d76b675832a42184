/**
 * Synthesizes the paystep stack for tests: the feature flags of cdk.json (so the template is the one
 * `cdk synth` produces) and bundling skipped (`aws:cdk:bundling-stacks: []`, no esbuild run), so a synth
 * takes a few seconds. Used by the CDK assertion tests and the parity test.
 */
import * as fs from 'node:fs';
import { App } from 'aws-cdk-lib';
import type { AppProps } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { PaystepStack, PROJECT_ROOT } from '../../lib/stack.ts';
import type { PaystepStackProps } from '../../lib/stack.ts';

export function cdkContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(fs.readFileSync(`${PROJECT_ROOT}/cdk.json`, 'utf8')) as {
    context?: Record<string, unknown>;
  };
  return { ...cdkJson.context, 'aws:cdk:bundling-stacks': [] };
}

export function newApp(props: AppProps = {}): App {
  return new App({ ...props, context: { ...cdkContext(), ...props.context } });
}

export function synthPaystep(props: PaystepStackProps = {}): {
  app: App;
  stack: PaystepStack;
  template: Template;
} {
  const app = newApp();
  const stack = new PaystepStack(app, 'Paystep', props);
  return { app, stack, template: Template.fromStack(stack) };
}
