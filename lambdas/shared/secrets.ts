/**
 * Secrets: from Secrets Manager (AWS: the stack sets PAYSTEP_SECRET_<NAME>_ARN) or, where the
 * runtime provides the value itself (the local runtime keeps generated secrets in its data dir),
 * from PAYSTEP_SECRET_<NAME>. Values are cached for five minutes and never logged.
 *
 * `sealValue` / `openValue` encrypt values kept at rest (merchant webhook signing secrets) under
 * a key secret of the topology (`webhook-secrets-key`).
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { envVarFor } from '../../lib/topology.ts';
import { clients } from './aws.ts';
import { config, ConfigError } from './config.ts';

const cache = new Map<string, { value: string; until: number }>();
const TTL_MS = 5 * 60_000;

export async function getSecret(name: string): Promise<string> {
  const direct = config.secretValue(name);
  if (direct) return direct;
  const hit = cache.get(name);
  if (hit && hit.until > Date.now()) return hit.value;
  const arn = config.secretArn(name);
  if (!arn)
    throw new ConfigError(
      `secret ${name}: neither ${envVarFor.secretValue(name)} nor ${envVarFor.secret(name)} is set`,
    );
  const out = await clients.secrets().send(new GetSecretValueCommand({ SecretId: arn }));
  if (!out.SecretString) throw new ConfigError(`secret ${name} has no string value`);
  cache.set(name, { value: out.SecretString, until: Date.now() + TTL_MS });
  return out.SecretString;
}

// ---------------------------------------------------------------- sealing values at rest

/**
 * A value encrypted at rest with AES-256-GCM under a key derived from a secret (an envelope:
 * everything needed to open it but the key). `kid` names the key, so a key secret can list
 * several keys while rotating (`new,old`, comma-separated): new values are sealed with the first,
 * values sealed with any listed key still open. `aad` binds the value to its record (e.g. the
 * endpoint id), so a sealed value copied onto another record does not open.
 */
export interface SealedValue {
  v: 1;
  alg: 'A256GCM';
  kid: string;
  iv: string;
  ct: string;
  tag: string;
}

interface DataKey {
  kid: string;
  key: Buffer;
}

const derived = new Map<string, DataKey[]>();

/** The 256-bit keys listed in secret `name` (HKDF-SHA256 of each listed value), first = current. */
async function dataKeys(name: string): Promise<DataKey[]> {
  const value = await getSecret(name);
  const hit = derived.get(`${name}\n${value}`);
  if (hit) return hit;
  const keys = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((material) => {
      const key = Buffer.from(hkdfSync('sha256', material, 'paystep', `paystep:${name}:aes-256-gcm`, 32));
      return { kid: createHash('sha256').update(key).digest('hex').slice(0, 16), key };
    });
  if (keys.length === 0) throw new ConfigError(`secret ${name} is empty`);
  if (derived.size > 16) derived.clear();
  derived.set(`${name}\n${value}`, keys);
  return keys;
}

export const isSealedValue = (v: unknown): v is SealedValue =>
  typeof v === 'object' &&
  v !== null &&
  (v as SealedValue).v === 1 &&
  (v as SealedValue).alg === 'A256GCM' &&
  typeof (v as SealedValue).ct === 'string';

/** Encrypts `plaintext` under the current key of secret `keySecret`, bound to `aad`. */
export async function sealValue(keySecret: string, plaintext: string, aad: string): Promise<SealedValue> {
  const [{ kid, key }] = (await dataKeys(keySecret)) as [DataKey];
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return {
    v: 1,
    alg: 'A256GCM',
    kid,
    iv: iv.toString('base64url'),
    ct: ct.toString('base64url'),
    tag: cipher.getAuthTag().toString('base64url'),
  };
}

/** Decrypts a sealed value; throws if its key is not listed or it was altered or moved. */
export async function openValue(keySecret: string, sealed: SealedValue, aad: string): Promise<string> {
  const k = (await dataKeys(keySecret)).find((x) => x.kid === sealed.kid);
  if (!k)
    throw new ConfigError(`secret ${keySecret} does not list the key ${sealed.kid} a value was sealed with`);
  const decipher = createDecipheriv('aes-256-gcm', k.key, Buffer.from(sealed.iv, 'base64url'));
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(Buffer.from(sealed.tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(sealed.ct, 'base64url')), decipher.final()]).toString(
    'utf8',
  );
}
