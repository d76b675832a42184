/**
 * Synthesizes the paystep stack for tests: the feature flags of cdk.json (so the template is the one
 * `cdk synth` produces) and bundling skipped (`aws:cdk:bundling-stacks: []`, no esbuild run), so a synth
 * takes a few seconds. Used by the CDK assertion tests and the parity test.
 *
 * The REST API and the alarms are nested stacks (docs/architecture.md "Stack size"): `template` is the
 * parent's alone, `api` and `alarms` each nested stack's, and `all` the parent with its nested stacks
 * (lib/inventory.ts `withNestedStacks`: their resources added, their parameters replaced by what the
 * parent passes), which is what the topology is checked against.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, NestedStack } from 'aws-cdk-lib';
import type { AppProps, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { withNestedStacks } from '../../lib/inventory.ts';
import type { TemplateJson } from '../../lib/inventory.ts';
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

export interface StackTemplates {
  /** The parent stack's template alone. */
  template: Template;
  api: Template;
  alarms: Template;
  /** The parent with its nested stacks' resources (see above). */
  all: Template;
}

/** Synthesizes `stack`'s app once and reads the parent's and the nested stacks' templates. */
export function stackTemplates(app: App, stack: PaystepStack): StackTemplates {
  const assembly = app.synth();
  const read = (s: Stack) =>
    JSON.parse(fs.readFileSync(path.join(assembly.directory, s.templateFile), 'utf8')) as TemplateJson;
  const parent = read(stack);
  const nested: Record<string, TemplateJson> = {};
  for (const child of stack.node.children)
    if (child instanceof NestedStack) nested[stack.getLogicalId(child.nestedStackResource!)] = read(child);
  return {
    template: Template.fromJSON(parent),
    api: Template.fromJSON(read(stack.apiStack)),
    alarms: Template.fromJSON(read(stack.alarmsStack)),
    all: Template.fromJSON(withNestedStacks(parent, nested)),
  };
}

export function synthPaystep(
  props: PaystepStackProps = {},
  appProps: AppProps = {},
): { app: App; stack: PaystepStack } & StackTemplates {
  const app = newApp(appProps);
  const stack = new PaystepStack(app, 'Paystep', props);
  return { app, stack, ...stackTemplates(app, stack) };
}
