/**
 * Statements of pgkeep's policies that no check of the authorization model depends on (the
 * mutation in test/authz/mutation.ts finds them), each with why it stays. Labels are
 * statementLabel()'s, with the environment written as <env>. The model test fails on an uncovered
 * statement that is not here, and on an entry here that some check now depends on.
 */
export const UNCOVERED_STATEMENTS: Readonly<Record<string, string>> = {
  'pgkeep-<env>-storage/RetentionEnforcerPolicy328A7D40: ReadManifests':
    "Uncovered in prod only: under Object Lock, ReadObjectLockRetention grants s3:GetObject on all of backups/* (HeadObject needs it to return the retain-until date), which subsumes this manifest-only grant. In dev (no Object Lock) it is the only grant that lets retention read a manifest before deleting, and it is covered there.",
};
