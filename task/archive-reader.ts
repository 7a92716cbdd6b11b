import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';

/**
 * Streams a backup object out of S3, hashing it on the way, through `zstd -d` into a consumer
 * process (pg_restore). Nothing touches the disk, and the SHA-256 of exactly the bytes fed to
 * the consumer is returned for comparison with the manifest.
 */
export interface ArchiveConsumer {
  /** Path of the program reading the uncompressed archive on stdin, e.g. pg_restore. */
  binary: string;
  args: string[];
  env?: Record<string, string>;
  /** Stops both processes (e.g. on SIGTERM); the caller sees a failed consumer. */
  signal?: AbortSignal;
}

export interface ArchiveReadResult {
  bytes: number;
  sha256: string;
  consumer: { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string };
  /**
   * `stoppedByConsumer`: the consumer had stopped reading (it exited) while zstd was still writing,
   * so zstd's failure (a broken pipe, a reset connection or SIGPIPE) is a consequence of the
   * consumer's, not a sign of a damaged archive.
   */
  decompressor: { code: number | null; signal: NodeJS.Signals | null; stderr: string; stoppedByConsumer: boolean };
}

export async function readArchiveInto(s3: S3Client, location: { bucket: string; key: string }, consumer: ArchiveConsumer): Promise<ArchiveReadResult> {
  const object = await s3.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key }));
  if (!object.Body) throw new Error(`s3://${location.bucket}/${location.key} has no body.`);
  return feedArchive(object.Body as Readable, consumer);
}

export async function feedArchive(compressed: Readable, consumer: ArchiveConsumer): Promise<ArchiveReadResult> {
  const zstd = spawn('zstd', ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const reader = spawn(consumer.binary, consumer.args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...consumer.env } });
  const collect = (stream: Readable | null): Promise<string> =>
    new Promise((resolve) => {
      let text = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        text = (text + chunk).slice(-4 * 1024 * 1024);
      });
      stream?.on('close', () => resolve(text));
    });
  const exitOf = (child: typeof zstd): Promise<{ code: number | null; signal: NodeJS.Signals | null }> =>
    new Promise((resolve) => {
      child.once('error', () => resolve({ code: null, signal: null }));
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
  const stopChildren = (): void => {
    for (const child of [zstd, reader]) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    (compressed as Readable & { destroy(): void }).destroy();
  };
  consumer.signal?.addEventListener('abort', stopChildren, { once: true });
  const readerStdout = collect(reader.stdout);
  const readerStderr = collect(reader.stderr);
  const zstdStderr = collect(zstd.stderr);
  const zstdExit = exitOf(zstd);
  const readerExit = exitOf(reader);

  // Every byte is hashed even if the consumer stops reading early (pg_restore --list reads
  // only the table of contents), so the SHA-256 always covers the whole object.
  const hash = createHash('sha256');
  let bytes = 0;
  let consumerGone = false;
  zstd.stdin.on('error', () => {
    consumerGone = true;
  });
  // The flow to the consumer fails only when the consumer's stdin is gone, i.e. it stopped reading.
  let consumerStoppedReading = false;
  const decompressedFlow = pipeline(zstd.stdout, reader.stdin).catch(() => {
    consumerStoppedReading = true;
  });
  for await (const chunk of compressed) {
    const buffer = chunk as Buffer;
    hash.update(buffer);
    bytes += buffer.length;
    if (consumerGone || zstd.stdin.destroyed) continue;
    if (!zstd.stdin.write(buffer)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          zstd.stdin.off('drain', done);
          zstd.stdin.off('close', done);
          resolve();
        };
        zstd.stdin.on('drain', done);
        zstd.stdin.on('close', done);
      });
    }
  }
  zstd.stdin.end();
  await decompressedFlow;
  const [zstdStatus, readerStatus] = await Promise.all([zstdExit, readerExit]);
  consumer.signal?.removeEventListener('abort', stopChildren);
  return {
    bytes,
    sha256: hash.digest('hex'),
    consumer: { ...readerStatus, stdout: await readerStdout, stderr: await readerStderr },
    decompressor: {
      code: zstdStatus.code,
      signal: zstdStatus.signal,
      stderr: await zstdStderr,
      stoppedByConsumer: consumerStoppedReading && zstdStatus.code !== 0,
    },
  };
}
