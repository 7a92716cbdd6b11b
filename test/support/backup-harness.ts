import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { GetObjectCommand, ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import pg from 'pg';
import { findNewestBackup, listCatalogEntries, type Backup } from '../../runtime/listing.ts';
import { parseManifest, type Manifest } from '../../catalog/manifest.ts';
import { mergeTags, verificationTags } from '../../runtime/verification.ts';
import { databasePrefix, encodeDatabaseSegment } from '../../catalog/keys.ts';
import type { LocalS3 } from '../../dev/local-s3.ts';
import { startTask } from '../../dev/task-process.ts';
import { feedArchive, type ArchiveReadResult } from '../../task/archive-reader.ts';
import { findPgBinaries } from '../../task/postgres-binaries.ts';
import type { ThrowawayCluster } from '../../task/throwaway-cluster.ts';
import type { RecordedRequest } from './s3-fault-proxy.ts';

const run = promisify(execFile);

export async function withClient<T>(connectionString: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

/** Two related tables (2,000 customers, 10,000 orders): small, but with a foreign key and indexes to restore. */
export async function createTinyShop(client: pg.Client): Promise<void> {
  await client.query('CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL)');
  await client.query('CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer NOT NULL REFERENCES customers, total numeric(10, 2) NOT NULL)');
  await client.query("INSERT INTO customers SELECT g, 'customer ' || md5(g::text) FROM generate_series(1, 2000) g");
  await client.query('INSERT INTO orders SELECT g, 1 + g % 2000, (g % 997) / 3.0 FROM generate_series(1, 10000) g');
}

/** What verify-backup (a Lambda function, not part of the task) records on a backup that passed its check. */
export async function markBackupVerified(s3: S3Client, bucket: string, backup: Backup): Promise<void> {
  await mergeTags(s3, bucket, backup.dataKey, verificationTags({ status: 'verified', method: 'sha256', at: new Date() }));
}

/** ~`megabytes` of incompressible table data, so a dump spans several multipart parts. */
export async function createIncompressibleDatabase(cluster: ThrowawayCluster, name: string, megabytes: number): Promise<void> {
  await cluster.createDatabase(name);
  await withClient(cluster.connectionString(name), async (client) => {
    await client.query('CREATE TABLE noise (id integer PRIMARY KEY, payload bytea NOT NULL)');
    await client.query('CREATE TABLE ledger (id serial PRIMARY KEY, note text NOT NULL)');
    // 1 KiB of random bytes per row: 64 md5 digests decoded from hex.
    await client.query(
      `INSERT INTO noise SELECT g, decode((SELECT string_agg(md5(random()::text || g || s), '') FROM generate_series(1, 64) s), 'hex')
       FROM generate_series(1, $1::int) g`,
      [megabytes * 1024],
    );
    await client.query("INSERT INTO ledger (note) SELECT 'entry ' || g FROM generate_series(1, 1000) g");
  });
}

export async function manifestOf(s3: S3Client, bucket: string, backup: Backup): Promise<Manifest> {
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: backup.manifestKey }));
  return parseManifest(await object.Body!.transformToString(), backup.manifestKey);
}

/** Restores a backup object into an existing empty database with pg_restore, verifying SHA-256 on the way. */
export async function restoreInto(s3: S3Client, bucket: string, manifest: Manifest, connectionString: string): Promise<ArchiveReadResult> {
  const [pgRestore] = await findPgBinaries('pg_restore');
  if (!pgRestore) throw new Error('pg_restore is not installed');
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: manifest.object.key }));
  return feedArchive(object.Body as Readable, { binary: pgRestore.path, args: ['--exit-on-error', '--dbname', connectionString] });
}

/** `pg_dump --schema-only`, minus the per-run random \restrict key lines that pg_dump 15.14+ emits. */
export async function schemaOf(connectionString: string): Promise<string> {
  const [pgDump] = await findPgBinaries('pg_dump');
  if (!pgDump) throw new Error('pg_dump is not installed');
  const { stdout } = await run(pgDump.path, ['--schema-only', '--no-comments', '--dbname', connectionString], { maxBuffer: 64 * 1024 * 1024 });
  return stdout
    .split('\n')
    .filter((line) => !/^\\(un)?restrict /.test(line))
    .join('\n');
}

export async function countRows(connectionString: string, schema: string, table: string): Promise<number> {
  return withClient(connectionString, async (client) => {
    const { rows } = await client.query<{ count: string }>(
      `SELECT count(*) AS count FROM ONLY ${client.escapeIdentifier(schema)}.${client.escapeIdentifier(table)}`,
    );
    return Number(rows[0]?.count);
  });
}

/** What the bucket holds for one catalog database: manifests mean "a backup exists". */
export async function catalogState(s3: S3Client, bucket: string, database: string): Promise<{ manifests: number; dataObjects: number }> {
  const entries = await listCatalogEntries(s3, { bucket, database });
  return { manifests: entries.filter((entry) => entry.manifestKey).length, dataObjects: entries.filter((entry) => entry.dataKey).length };
}

/**
 * Multipart uploads the server still holds under a catalog database's prefix, as
 * ListMultipartUploads reports them: what a failed backup must not leave behind. Only meaningful
 * on a server that implements that call (moto; fauxqs answers it with an object listing).
 */
export async function openUploads(s3: S3Client, bucket: string, database: string): Promise<{ key: string; uploadId: string }[]> {
  const uploads: { key: string; uploadId: string }[] = [];
  // The SDK has no paginator for this call: page by its key and upload id markers.
  let markers: { KeyMarker?: string; UploadIdMarker?: string } = {};
  for (;;) {
    const page = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: databasePrefix(database), ...markers }));
    for (const upload of page.Uploads ?? []) uploads.push({ key: upload.Key ?? '', uploadId: upload.UploadId ?? '' });
    if (!page.IsTruncated) return uploads;
    markers = { KeyMarker: page.NextKeyMarker, UploadIdMarker: page.NextUploadIdMarker };
  }
}

export function requestsFor(requests: RecordedRequest[], database: string): RecordedRequest[] {
  const segment = `/${encodeDatabaseSegment(database)}/`;
  return requests.filter((request) => decodeURIComponent(request.path).includes(segment) || request.path.includes(segment));
}

export async function childPid(parentPid: number, name: string): Promise<number> {
  const { stdout } = await run('pgrep', ['-P', String(parentPid), '-x', name]);
  const pid = Number(stdout.trim().split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no ${name} child of ${parentPid}`);
  return pid;
}

/**
 * Runs the real backup command (its own process, as in the container) against `sourceEnvironment`,
 * catalogued as `catalogName`, and returns the newest backup it wrote; throws if it wrote none.
 */
export async function backUpWithTask(s3: S3Client, localS3: LocalS3, sourceEnvironment: Record<string, string>, catalogName: string): Promise<Backup> {
  const exit = await startTask({
    command: 'backup',
    env: { ...sourceEnvironment, ...localS3.taskEnvironment(), PGKEEP_ENVIRONMENT: 'test', PGKEEP_DATABASE_NAME: catalogName },
  }).exited;
  if (exit.code !== 0) throw new Error(`the backup task failed for ${catalogName}: ${JSON.stringify(exit.logs)}`);
  const backup = await findNewestBackup(s3, { bucket: localS3.bucket, database: catalogName });
  if (!backup) throw new Error(`the backup task wrote no backup for ${catalogName}`);
  return backup;
}
