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
