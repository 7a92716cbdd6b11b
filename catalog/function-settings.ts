/**
 * Every setting of the three Lambda functions: its environment variable, its default and its
 * parser, each written once.
 *
 * Both sides use the same definitions. A handler reads its settings with
 * `functionSettings.<function>.parse(process.env)`, so it reads nothing that is not defined here;
 * the infrastructure writes a function's variables with `functionSettings.<function>.environment({…})`,
 * which takes the typed values (a missing required setting, or a misspelled one, does not compile)
 * and fills in every default from here, so the stack and the handler cannot disagree on one.
 *
 * A Lambda's settings come from the stack: a missing or invalid one is a deployment bug, so the
 * parser throws at the first, saying to redeploy, instead of collecting them like the task does.
 */
import { validatePolicy, type RetentionPolicy } from './retention-policy.ts';

export type Environment = Readonly<Record<string, string | undefined>>;

export interface FunctionSetting<T> {
  /** What the setting holds, for the message when it is missing. */
  readonly expectation: string;
  /** The value when the variable is unset or blank; a setting without one is required. */
  readonly default?: T;
  /** The value of the (trimmed, non-empty) variable; throws, naming the setting, when it is invalid. */
  parse(raw: string, name: string): T;
  /** The variable's text for a value: what `parse` reads back as that value. */
  format(value: T): string;
}

/** A setting with a default: the infrastructure may leave it out, and the handler never misses it. */
export type DefaultedSetting<T> = FunctionSetting<T> & { readonly default: T };

const REDEPLOY = 'The pgkeep stack sets it; redeploy.';

/** Any non-empty text, e.g. a name or an ARN. */
export function textSetting(expectation: string): FunctionSetting<string> {
  return { expectation, parse: (raw) => raw, format: (value) => value };
}

/**
 * A positive number in plain decimal notation ("48", "0.5"). Number() alone also takes "0x10",
 * "1e1" and "0b11" (16, 10, 3), which nobody writing a setting means as that number.
 */
export function positiveNumberSetting(expectation: string, fallback: number): DefaultedSetting<number> {
  return {
    expectation,
    default: fallback,
    parse(raw, name) {
      const value = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : Number.NaN;
      if (!Number.isFinite(value) || value <= 0) throw new Error(`${name}="${raw}" is invalid: expected a positive number such as 48 or 0.5. ${REDEPLOY}`);
      return value;
    },
    format: String,
  };
}

/** A positive whole number in decimal digits: a count or a size, where "8.0" or "1e1" is a mistake. */
export function positiveIntegerSetting(expectation: string, fallback: number): DefaultedSetting<number> {
  return {
    expectation,
    default: fallback,
    parse(raw, name) {
      const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
      if (!Number.isSafeInteger(value) || value <= 0)
        throw new Error(`${name}="${raw}" is invalid: expected a positive whole number (decimal digits only). ${REDEPLOY}`);
      return value;
    },
    format: String,
  };
}

/** true or false (any case); unset means false. */
export function flagSetting(expectation: string): DefaultedSetting<boolean> {
  return {
    expectation,
    default: false,
    parse(raw, name) {
      const value = raw.toLowerCase();
      if (value === 'false') return false;
      if (value === 'true') return true;
      throw new Error(`${name}="${value}" is invalid: expected true or false.`);
    },
    format: String,
  };
}

/** One of a fixed set of words; the first is the default. */
export function choiceSetting<const T extends string>(expectation: string, choices: readonly [T, ...T[]]): DefaultedSetting<T> {
  return {
    expectation,
    default: choices[0],
    parse(raw, name) {
      if ((choices as readonly string[]).includes(raw)) return raw as T;
      throw new Error(`${name}="${raw}" is invalid: expected one of ${choices.join(', ')}. ${REDEPLOY}`);
    },
    format: (value) => value,
  };
}

/** Text that may be absent: unset (or blank) reads as '', meaning "not configured". */
export function optionalTextSetting(expectation: string): DefaultedSetting<string> {
  return { expectation, default: '', parse: (raw) => raw, format: (value) => value };
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

export function parsePolicy(raw: string): RetentionPolicy {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new Error(
      'PGKEEP_RETENTION_POLICY is not JSON: expected an object such as {"daily":7,"weekly":4,"monthly":12,"yearly":3,"timezone":"UTC","minVerified":3,"unverifiedGraceHours":24}.',
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error('PGKEEP_RETENTION_POLICY must be a JSON object with daily, weekly, monthly, yearly, timezone, minVerified and unverifiedGraceHours.');
  }
  const policy = parsed as RetentionPolicy;
  validatePolicy(policy);
  return policy;
}

type ValueOf<S> = S extends { parse(raw: string, name: string): infer T } ? T : never;
type RequiredNames<D> = { [Name in keyof D]: D[Name] extends { default: unknown } ? never : Name }[keyof D];

/** The parsed settings of a function, by variable name. */
export type FunctionSettingValues<D> = { readonly [Name in keyof D]: ValueOf<D[Name]> };
/** What the infrastructure gives: every required setting; a setting with a default only where it differs. */
export type FunctionSettingInput<D> = { readonly [Name in RequiredNames<D>]: ValueOf<D[Name]> } & {
  readonly [Name in Exclude<keyof D, RequiredNames<D>>]?: ValueOf<D[Name]>;
};

export interface FunctionSettings<D> {
  readonly definitions: D;
  /** Reads every setting from a function's environment; throws at the first missing or invalid one. */
  parse(env: Environment): FunctionSettingValues<D>;
  /** The function's environment variables: every setting, each default filled in from here. */
  environment(values: FunctionSettingInput<D>): Record<string, string>;
}

function functionSettingsOf<D extends Record<string, FunctionSetting<unknown>>>(definitions: D): FunctionSettings<D> {
  const entries: [string, FunctionSetting<unknown>][] = Object.entries(definitions);
  return {
    definitions,
    parse(env) {
      const values: Record<string, unknown> = {};
      for (const [name, setting] of entries) {
        const raw = env[name]?.trim();
        if (raw) values[name] = setting.parse(raw, name);
        else if ('default' in setting) values[name] = setting.default;
        else throw new Error(`${name} is not set: expected ${setting.expectation}. ${REDEPLOY}`);
      }
      return values as FunctionSettingValues<D>;
    },
    environment(values) {
      const given = values as Readonly<Record<string, unknown>>;
      const variables: Record<string, string> = {};
      for (const [name, setting] of entries) {
        const value = given[name] ?? setting.default;
        if (value === undefined) throw new Error(`${name} has no value and no default`);
        variables[name] = setting.format(value);
      }
      return variables;
    },
  };
}

/** What every scheduled function works on: the bucket, the environment and its databases. */
const catalogScope = {
  PGKEEP_BUCKET: textSetting('the backup bucket name'),
  PGKEEP_ENVIRONMENT: textSetting('the environment name'),
  PGKEEP_DATABASES: {
    expectation: 'a JSON array of database names',
    parse: parseDatabases,
    format: (databases: readonly string[]) => JSON.stringify(databases),
  } satisfies FunctionSetting<readonly string[]>,
};

/** The environment's vault (catalog/vault.ts), where one is configured: the bucket that receives
 * the replicated copies and its region. Both blank when the environment has no vault. */
const vaultScope = {
  PGKEEP_VAULT_BUCKET: optionalTextSetting('the vault bucket name, or blank without a vault'),
  PGKEEP_VAULT_REGION: optionalTextSetting("the vault bucket's region, or blank without a vault"),
};

export const functionSettings = {
  /** verify-backup: invoked by S3 for every new `backups/**.manifest.json`. */
  verifyBackup: functionSettingsOf({
    PGKEEP_ENVIRONMENT: textSetting('the environment name'),
    PGKEEP_ALERT_TOPIC_ARN: textSetting('the ARN of the alert topic'),
    /** Above this the store's checksum is the only affordable check; on AWS S3 it always has one. */
    PGKEEP_VERIFY_MAX_STREAM_MB: positiveIntegerSetting('the largest object (MiB) to stream through SHA-256', 10_240),
    /** primary: checks the backups the task wrote. vault: the same function deployed in the vault's
     * account and region, checking the replicated copies (catalog/vault.ts). */
    PGKEEP_VERIFY_SITE: choiceSetting('primary or vault', ['primary', 'vault']),
    /** vault only: every verified copy stays locked at least this many days from its arrival. S3
     * Replication copies a source object's own Object Lock retention onto its copy, which then
     * overrides the vault's default; extending a retain-until date is allowed in either mode. */
    PGKEEP_VAULT_LOCK_DAYS: positiveIntegerSetting("the vault's lock, in days from a copy's arrival", 1),
  }),
  /** backup-health: hourly age and size of each database's newest verified backup. */
  backupHealth: functionSettingsOf({
    ...catalogScope,
    /** How many earlier verified backups the size median is taken over. */
    PGKEEP_HEALTH_BASELINE_COUNT: positiveIntegerSetting('the number of earlier backups the size median is taken over', 7),
    ...vaultScope,
  }),
  /** enforce-retention: the daily GFS run. */
  enforceRetention: functionSettingsOf({
    ...catalogScope,
    PGKEEP_RETENTION_POLICY: {
      expectation: 'the retention policy as JSON',
      parse: parsePolicy,
      format: (policy: RetentionPolicy) => JSON.stringify(policy),
    } satisfies FunctionSetting<RetentionPolicy>,
    /** Only log and publish what would be deleted. */
    PGKEEP_RETENTION_DRY_RUN: flagSetting('true to delete nothing'),
    /** The bucket is under S3 Object Lock: nothing locked is deleted. */
    PGKEEP_OBJECT_LOCK: flagSetting('true when the bucket is under S3 Object Lock'),
    /** Objects of an incomplete backup are removed after this many hours. */
    PGKEEP_INCOMPLETE_GRACE_HOURS: positiveNumberSetting("the hours after which an incomplete backup's objects are removed", 48),
    ...vaultScope,
    /** With a vault: nothing is deleted until the vault's verifier has verified its off-site copy. */
    PGKEEP_RETENTION_REQUIRE_OFFSITE: flagSetting('true to keep every backup whose off-site copy is not verified'),
  }),
};

export type FunctionName = keyof typeof functionSettings;
