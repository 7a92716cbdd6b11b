/**
 * One failure, told the way an operator needs it: what failed, and what to do about it.
 * Every message the task prints passes through `redactSecrets` first.
 */
export type FailureStage =
  | 'configuration'
  | 'connect'
  | 'version-check'
  | 'snapshot'
  | 'dump'
  | 'compress'
  | 'upload'
  /** CompleteMultipartUpload and the check of what S3 assembled. */
  | 'complete'
  | 'manifest'
  | 'interrupted'
  // restore and drill
  | 'refused'
  | 'archived'
  | 'checksum'
  | 'restore'
  | 'drill-record';

export class BackupFailure extends Error {
  override name = 'BackupFailure';
  constructor(
    readonly stage: FailureStage,
    message: string,
    readonly remedy: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The password in the example URLs of messages and remedies; a registered secret still wins. */
export const URL_PASSWORD_PLACEHOLDER = 'PASSWORD';
/** A connection URL's form, as messages show it. */
export const EXAMPLE_DATABASE_URL = `postgresql://user:${URL_PASSWORD_PLACEHOLDER}@host:port/database`;

const secretsToRedact = new Set<string>();

/** Registers a value (a password, a connection URL's password) that must never be printed. */
export function registerSecret(secret: string | undefined): void {
  if (secret && secret.length >= 3) secretsToRedact.add(secret);
}

export function redactSecrets(text: string): string {
  let redacted = text;
  for (const secret of secretsToRedact) {
    redacted = redacted.split(secret).join('[REDACTED]');
    const encoded = encodeURIComponent(secret);
    if (encoded !== secret) redacted = redacted.split(encoded).join('[REDACTED]');
  }
  // Passwords embedded in any connection URL, registered or not, except the placeholder the
  // messages use to show the URL's form (postgresql://user:PASSWORD@host:port/database), which
  // redacted would read as if a real password had been there.
  return redacted.replace(/(postgres(?:ql)?:\/\/[^:/@\s]*:)([^@\s]*)@/gi, (match, prefix: string, password: string) =>
    password === URL_PASSWORD_PLACEHOLDER ? match : `${prefix}[REDACTED]@`,
  );
}
