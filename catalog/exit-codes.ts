/**
 * The pgkeep container's exit codes: the one table of what each means and what to do about it.
 *
 * The task returns them (task/main.ts), the infrastructure matches them in the EventBridge rules
 * that turn a stopped task into an email (infra/task-notifications.ts), and the README's "Exit codes
 * and logs" table shows this table row for row (test/docs.test.ts compares the two). A rule that
 * matched a code the task never returns, or a README that explained one it no longer does, would
 * only be noticed on the day somebody needed it.
 */
export interface ExitCode {
  readonly code: number;
  /** The name the code goes by in code (EXIT[name]). */
  readonly name: string;
  /** What the process ending with this code says about the backup, restore or drill. */
  readonly meaning: string;
  /** What the operator does next. */
  readonly whatToDo: string;
}

export const EXIT_CODES = [
  {
    code: 0,
    name: 'ok',
    meaning:
      'backup finished (data object uploaded and checked by size, and by CRC64NVME on AWS; manifest written); restore finished and matches its manifest; drill passed',
    whatToDo: 'nothing',
  },
  {
    code: 1,
    name: 'failed',
    meaning:
      'failed: no manifest was written for the backup; a half-restored database was dropped; at least one database of a drill did not restore, did not match its manifest or left no drill record',
    whatToDo:
      'read the failure line: it says what failed, what to do, and what S3 holds now (the upload aborted; or, if S3 could not be reached, which upload is left for the lifecycle rule; or a data object S3 had completed, which is data-only, never a backup)',
  },
  {
    code: 2,
    name: 'misconfigured',
    meaning:
      'misconfigured or refused (e.g. a non-empty restore target, or a `PGKEEP_PG_DUMP_PATH` that is not a `pg_dump`): nothing was dumped, restored or written',
    whatToDo: 'fix what the failure line names and run the task again',
  },
  {
    code: 3,
    name: 'archived',
    meaning: 'restore: the backup is archived; a retrieval was requested',
    whatToDo: 'run the restore again once it is retrieved (or with `PGKEEP_RESTORE_WAIT_FOR_ARCHIVE=true` to wait in the task)',
  },
  {
    code: 4,
    name: 'restoredWithDifferences',
    meaning: 'restore: finished, but the database differs from the manifest (the differences are logged)',
    whatToDo: 'do not put the restored database into service before checking each difference in the log',
  },
  {
    code: 143,
    name: 'interrupted',
    meaning: 'stopped by SIGTERM (an ECS stop): cleaned up within 30 s, no manifest written',
    whatToDo: 'the failure line says in which stage it stopped and what S3 holds, as for 1; run the task again',
  },
] as const satisfies readonly ExitCode[];

export type ExitCodeName = (typeof EXIT_CODES)[number]['name'];

/** The codes by name, e.g. EXIT.archived (3): what the task returns and the infra matches. */
export const EXIT = Object.fromEntries(EXIT_CODES.map(({ name, code }) => [name, code])) as {
  readonly [Name in ExitCodeName]: Extract<(typeof EXIT_CODES)[number], { name: Name }>['code'];
};
