/** Lambda settings come from the environment the CDK stack sets; a missing one is a deployment bug. */
export function requiredSetting(env: Readonly<Record<string, string | undefined>>, name: string, expectation: string): string {
  const value = env[name]?.trim();
  if (!value) throw new Error(`${name} is not set: expected ${expectation}. The pgkeep stack sets it; redeploy.`);
  return value;
}

/**
 * A positive number in plain decimal notation ("48", "0.5"). Number() alone also takes "0x10",
 * "1e1" and "0b11" (16, 10, 3), which nobody writing a setting means as that number.
 */
export function numberSetting(env: Readonly<Record<string, string | undefined>>, name: string, fallback: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name}="${raw}" is invalid: expected a positive number such as 48 or 0.5. The pgkeep stack sets it; redeploy.`);
  return value;
}

/** A positive whole number in decimal digits: a count or a size, where "8.0" or "1e1" is a mistake. */
export function integerSetting(env: Readonly<Record<string, string | undefined>>, name: string, fallback: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${name}="${raw}" is invalid: expected a positive whole number (decimal digits only). The pgkeep stack sets it; redeploy.`);
  return value;
}

export function parseDatabases(raw: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new Error('PGKEEP_DATABASES is not JSON: expected an array of database names, e.g. ["orders","billing"].');
  }
  if (!Array.isArray(parsed) || parsed.length === 0 || parsed.some((name) => typeof name !== 'string' || name === '')) {
    throw new Error('PGKEEP_DATABASES must be a non-empty JSON array of database names: a check of nothing would alarm on nothing.');
  }
  return parsed as string[];
}

/** What every scheduled function works on: the bucket, the environment and its databases. */
export function catalogScope(env: Readonly<Record<string, string | undefined>>): { bucket: string; environment: string; databases: string[] } {
  return {
    bucket: requiredSetting(env, 'PGKEEP_BUCKET', 'the backup bucket name'),
    environment: requiredSetting(env, 'PGKEEP_ENVIRONMENT', 'the environment name'),
    databases: parseDatabases(requiredSetting(env, 'PGKEEP_DATABASES', 'a JSON array of database names')),
  };
}
