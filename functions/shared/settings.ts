/** Lambda settings come from the environment the CDK stack sets; a missing one is a deployment bug. */
export function requiredSetting(env: Readonly<Record<string, string | undefined>>, name: string, expectation: string): string {
  const value = env[name]?.trim();
  if (!value) throw new Error(`${name} is not set: expected ${expectation}. The pgkeep stack sets it; redeploy.`);
  return value;
}

export function numberSetting(env: Readonly<Record<string, string | undefined>>, name: string, fallback: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name}="${raw}" is invalid: expected a positive number.`);
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
