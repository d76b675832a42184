/**
 * Validation of the state machine definitions as written (what AWS would accept), done once per
 * definition: the validator (aws-local-stepfunctions, on ajv) compiles its schema on every
 * construction, which cost about a second and a half of every runtime start (more under load) for
 * the same six files. A definition that passed is remembered by the hash of its text and of the
 * validator's version in `node_modules/.cache/paystep-asl/`, the usual place for tools' caches; an
 * edited definition (or another validator version) is validated again. Without a writable cache
 * every start validates, as before.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';

const CACHE_DIR = path.resolve(import.meta.dirname, '../../node_modules/.cache/paystep-asl');

let validatorVersion: string | undefined;
function version(): string {
  if (validatorVersion === undefined) {
    try {
      const pkg = path.resolve(
        import.meta.dirname,
        '../../node_modules/aws-local-stepfunctions/package.json',
      );
      validatorVersion = String((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version?: string }).version);
    } catch {
      validatorVersion = 'unknown';
    }
  }
  return validatorVersion;
}

/** Throws the validator's error when `definition` is not a valid state machine (ARNs not checked). */
export function validateDefinition(definition: unknown): void {
  const key = createHash('sha256')
    .update(version())
    .update('\0')
    .update(JSON.stringify(definition))
    .digest('hex');
  const marker = path.join(CACHE_DIR, key);
  if (fs.existsSync(marker)) return;
  new StateMachine(definition as StateMachineDefinition, { validationOptions: { checkArn: false } });
  try {
    fs.mkdirSync(CACHE_DIR, { recursive: true });
    fs.writeFileSync(marker, '');
  } catch {
    // A read-only install validates on every start: slower, never wrong.
  }
}
