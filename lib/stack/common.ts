/**
 * What every part of the AWS side shares: the project root, the topology markers read back by
 * `cdkInventory()` (lib/inventory.ts), construct ids, and cdk-nag acknowledgements.
 */
import { fileURLToPath } from 'node:url';
import { CfnResource, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/** Project root: entries and ASL files in the topology are relative to it. */
export const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Metadata keys put on every resource that stands for a topology entry (read by `cdkInventory`). */
export const KIND_KEY = 'paystep:kind';
export const NAME_KEY = 'paystep:name';

/** `ping-start` → `PingStart`: construct ids that read well in logical ids. */
export const pascal = (name: string): string =>
  name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('');

/** Marks the resource behind `construct` as the topology entry `kind`/`name`. */
export function mark(construct: IConstruct, kind: string, name: string): void {
  const cfn = construct instanceof CfnResource ? construct : construct.node.defaultChild;
  if (!(cfn instanceof CfnResource))
    throw new Error(`cannot mark ${construct.node.path}: no CloudFormation resource`);
  cfn.addMetadata(KIND_KEY, kind);
  cfn.addMetadata(NAME_KEY, name);
}

/** Acknowledges a cdk-nag finding on one construct (and its children), with the reason. */
export function acknowledge(construct: IConstruct, id: string, reason: string): void {
  Validations.of(construct).acknowledge({ id, reason });
}
