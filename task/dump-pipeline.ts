import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';

/**
 * `pg_dump -Fc -Z0 | zstd` as two child processes joined by an OS pipe. The uncompressed dump
 * never passes through Node: pg_dump writes straight into zstd's stdin, and Node reads only the
 * compressed bytes. Multi-threaded zstd outruns pg_dump's own per-table compression by far,
 * and one zstd frame over the whole archive compresses better than per-table zlib.
 */
export interface DumpPipelineOptions {
  pgDumpPath: string;
  /** libpq variables for pg_dump (the password travels here, never in argv). */
  libpqEnvironment: Record<string, string>;
  snapshotId: string;
  lockWaitTimeoutSeconds: number;
  compressionLevel: number;
  compressionThreads: number;
  zstdPath?: string;
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last 16 KiB the process wrote to stderr. */
  stderr: string;
  /** Set when the process could not be started at all (e.g. not installed). */
  spawnError?: Error;
}

export interface DumpPipelineExit {
  pgDump: ProcessExit;
  zstd: ProcessExit;
  /** Bytes pg_dump produced, as zstd counted them; undefined if zstd did not report. */
  uncompressedBytes: number | undefined;
}

export interface DumpPipeline {
  /** The compressed archive. Read it to the end (or kill the pipeline). */
  output: Readable;
  /** Resolves when both processes have exited. */
  exited: Promise<DumpPipelineExit>;
  pgDumpPid: number | undefined;
  /** Uncompressed bytes read by zstd so far (from /proc; undefined where there is none). */
  uncompressedBytesSoFar(): number | undefined;
  kill(signal?: NodeJS.Signals): void;
}

const STDERR_TAIL_BYTES = 16 * 1024;

export function pgDumpArguments(options: Pick<DumpPipelineOptions, 'snapshotId' | 'lockWaitTimeoutSeconds'>): string[] {
  return [
    '--format=custom',
    // Compression is zstd's job, outside pg_dump.
    '--compress=0',
    `--snapshot=${options.snapshotId}`,
    `--lock-wait-timeout=${options.lockWaitTimeoutSeconds}s`,
    // Never wait for a password prompt: a missing password is an error, not a hang.
    '--no-password',
  ];
}

export function zstdArguments(level: number, threads: number): string[] {
  // -vv makes zstd report exact byte counts ("(N B => M B") when it finishes, which gives the
  // uncompressed size without routing the dump through Node to count it.
  return [`-${level}`, `-T${threads}`, '-vv', '--no-progress', '-c'];
}

export function startDumpPipeline(options: DumpPipelineOptions): DumpPipeline {
  const pgDump = spawn(options.pgDumpPath, pgDumpArguments(options), {
    env: { ...process.env, ...options.libpqEnvironment },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pgDumpExit = watchExit(pgDump);
  if (!pgDump.stdout) throw new Error('pg_dump has no stdout pipe');

  const zstd = spawn(options.zstdPath ?? 'zstd', zstdArguments(options.compressionLevel, options.compressionThreads), {
    stdio: [pgDump.stdout, 'pipe', 'pipe'],
  });
  // zstd now holds its own copy of the pipe's read end; close ours so nothing in this process
  // can ever consume dump bytes meant for zstd.
  pgDump.stdout.destroy();
  const zstdExit = watchExit(zstd);
  if (!zstd.stdout) throw new Error('zstd has no stdout pipe');

  const kill = (signal: NodeJS.Signals = 'SIGTERM'): void => {
    for (const child of [pgDump, zstd]) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    }
  };
  // If zstd cannot start, pg_dump would block forever on a pipe nobody reads.
  void zstdExit.then((exit) => {
    if (exit.spawnError) kill('SIGKILL');
  });

  return {
    output: zstd.stdout,
    pgDumpPid: pgDump.pid,
    exited: Promise.all([pgDumpExit, zstdExit]).then(([pgDumpResult, zstdResult]) => ({
      pgDump: pgDumpResult,
      zstd: zstdResult,
      uncompressedBytes: parseZstdInputBytes(zstdResult.stderr),
    })),
    uncompressedBytesSoFar: () => readCharsFromProc(zstd.pid),
    kill,
  };
}

export function parseZstdInputBytes(stderr: string): number | undefined {
  // zstd right-aligns the counts: "( 20000 B =>  20013 B" for small inputs.
  const matches = [...stderr.matchAll(/\(\s*(\d+) B =>\s*(\d+) B/g)];
  const last = matches.at(-1);
  return last?.[1] === undefined ? undefined : Number(last[1]);
}

function watchExit(child: ChildProcess): Promise<ProcessExit> {
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    stderr = (stderr + text).slice(-STDERR_TAIL_BYTES);
  });
  return new Promise((resolve) => {
    child.once('error', (spawnError) => resolve({ code: null, signal: null, stderr, spawnError }));
    child.once('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

function readCharsFromProc(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const match = /^rchar:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return match?.[1] ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}
