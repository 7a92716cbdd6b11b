/**
 * Settings the backup task can only check against the machine and the server it runs on: the
 * pg_dump named by PGKEEP_PG_DUMP_PATH, and a password the server asks for but nobody gave. The
 * task runs as its own process (as in the container) against a real PostgreSQL (a throwaway
 * cluster: TCP logins need a SCRAM password) and a real S3-protocol server on loopback. fauxqs
 * suffices: each failure here comes before the upload would start, and what is asserted of S3 is
 * only that nothing was written there (an object listing, which fauxqs answers truly).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { startLocalS3, type LocalS3 } from '../../dev/local-s3.ts';
import { startTask, type TaskExit, type TaskLogLine } from '../../dev/task-process.ts';
import { startThrowawayCluster, type ThrowawayCluster } from '../../task/throwaway-cluster.ts';
import { findPgBinaries } from '../../task/postgres-binaries.ts';
import { explainConnectionError } from '../../task/source-database.ts';
import { withClient } from '../support/backup-harness.ts';

let cluster: ThrowawayCluster;
let localS3: LocalS3;
let s3: S3Client;
let scratch: string;
/** A real pg_dump for the wrapper script to run. */
let realPgDump: string;

beforeAll(async () => {
  [cluster, localS3] = await Promise.all([startThrowawayCluster(), startLocalS3({ bucket: 'pgkeep-task-settings' })]);
  s3 = localS3.client();
  scratch = await mkdtemp(path.join(os.tmpdir(), 'pgkeep-task-settings-'));
  await cluster.createDatabase('tiny');
  await withClient(cluster.connectionString('tiny'), (client) =>
    client.query("CREATE TABLE notes AS SELECT g AS id, 'note ' || g AS body FROM generate_series(1, 100) g"),
  );
  const [newest] = await findPgBinaries('pg_dump');
  if (!newest) throw new Error('no pg_dump installed');
  realPgDump = newest.path;
});

afterAll(async () => {
  await localS3?.stop();
  await cluster?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

function backup(catalogName: string, env: Record<string, string>): Promise<TaskExit> {
  return startTask({ command: 'backup', env: { ...localS3.taskEnvironment(), PGKEEP_ENVIRONMENT: 'test', PGKEEP_DATABASE_NAME: catalogName, ...env } }).exited;
}

function failureOf(exit: TaskExit): TaskLogLine {
  const failure = exit.logs.find((line) => line.message === 'backup failed');
  if (!failure) throw new Error(`no failure was logged; logs: ${JSON.stringify(exit.logs)}`);
  return failure;
}

async function objectsUnder(catalogName: string): Promise<string[]> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: localS3.bucket, Prefix: `backups/${catalogName}/` }));
  return (listed.Contents ?? []).map((object) => object.Key ?? '');
}

async function script(name: string, body: string): Promise<string> {
  const file = path.join(scratch, name);
  await writeFile(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

describe('PGKEEP_PG_DUMP_PATH: exactly this pg_dump, or a configuration error', () => {
  it('refuses a path that does not exist, naming it, instead of using another pg_dump, and exits 2', async () => {
    const exit = await backup('missing-pg-dump', { ...cluster.env('tiny'), PGKEEP_PG_DUMP_PATH: '/nonexistent/pgkeep/bin/pg_dump' });

    expect(exit.code).toBe(2);
    const failure = failureOf(exit);
    expect(failure.stage).toBe('configuration');
    expect(failure.error).toBe('PGKEEP_PG_DUMP_PATH=/nonexistent/pgkeep/bin/pg_dump does not exist.');
    expect(failure.remedy).toContain('Point PGKEEP_PG_DUMP_PATH at a pg_dump executable');
    expect(failure.remedy).toContain('or unset it to let pgkeep choose');
    expect(exit.logs.some((line) => line.message === 'connected')).toBe(false);
    expect(await objectsUnder('missing-pg-dump')).toEqual([]);
  });

  it('refuses a program that is not pg_dump, quoting what it printed, and exits 2', async () => {
    const impostor = await script('pg_dump', 'echo "mysqldump  Ver 10.19 Distrib 10.11.6-MariaDB"');

    const exit = await backup('impostor-pg-dump', { ...cluster.env('tiny'), PGKEEP_PG_DUMP_PATH: impostor });

    expect(exit.code).toBe(2);
    expect(failureOf(exit).error).toBe(
      `PGKEEP_PG_DUMP_PATH=${impostor} is not pg_dump: its --version printed "mysqldump  Ver 10.19 Distrib 10.11.6-MariaDB", where pg_dump prints "pg_dump (PostgreSQL) <version>".`,
    );
    expect(await objectsUnder('impostor-pg-dump')).toEqual([]);
  });

  it('runs exactly the file named, whatever its name, and backs up with it', async () => {
    const wrapper = await script('pg_dump-15-wrapper', `exec ${realPgDump} "$@"`);

    const exit = await backup('wrapped-pg-dump', { ...cluster.env('tiny'), PGKEEP_PG_DUMP_PATH: wrapper });

    expect(exit.code, JSON.stringify(exit.logs)).toBe(0);
    expect(exit.logs.find((line) => line.message === 'connected')?.pgDump).toBe(wrapper);
    expect((await objectsUnder('wrapped-pg-dump')).some((key) => key.endsWith('.manifest.json'))).toBe(true);
  });
});

describe('a server that asks for a password nobody gave', () => {
  it("names the missing password instead of the driver's SASL message, and uploads nothing", async () => {
    const urlWithoutPassword = `postgresql://${encodeURIComponent(cluster.user)}@127.0.0.1:${cluster.port}/tiny`;

    const exit = await backup('no-password', { PGKEEP_DATABASE_URL: urlWithoutPassword });

    expect(exit.code).toBe(1);
    const failure = failureOf(exit);
    expect(failure.stage).toBe('connect');
    expect(failure.error).toBe(
      `${cluster.user}@127.0.0.1:${cluster.port}/tiny asks for a password, but none was given (neither PGPASSWORD nor a password in PGKEEP_DATABASE_URL).`,
    );
    expect(failure.remedy).toContain('Set PGPASSWORD');
    expect(JSON.stringify(exit.logs)).not.toContain('SASL');
    expect(await objectsUnder('no-password')).toEqual([]);
  });

  // The throwaway clusters log in with SCRAM; under MD5 (older servers), node-postgres hashes a
  // missing password as if it were one, and the server answers 28P01. This driver error is a
  // stand-in for such a server, which this machine's clusters are not configured to be.
  it('names the missing password also when an MD5 server reports it as a failed password', () => {
    const noPassword = { host: 'db.internal', port: 5432, user: 'backup', password: undefined, database: 'shop', sslMode: undefined, sslRootCert: undefined };

    const failure = explainConnectionError({ code: '28P01', message: 'password authentication failed for user "backup"' }, noPassword);

    expect(failure.message).toBe(
      'backup@db.internal:5432/shop asks for a password, but none was given (neither PGPASSWORD nor a password in PGKEEP_DATABASE_URL).',
    );
  });
});
