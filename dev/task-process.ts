import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
// The one import of dev/ from test/support/: under the test suite (which sets PGKEEP_AWS_CALL_RECORDINGS),
// the task processes that npm start and the tests start record their AWS calls for the authorization
// model; outside a test run no task process gets the recorder.
import { RECORDER_PRELOAD, isComponent, recordingEnvironment } from '../test/support/aws-call-recorder.ts';

/**
 * Runs the pgkeep task as its own process, exactly as the container does (configuration only
 * through the environment), and reads its structured JSON log lines as they arrive.
 */
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const TASK_SOURCE_ENTRY = fileURLToPath(new URL('../task/main.ts', import.meta.url));
const POSTGRES_AS_ROOT_PRELOAD = fileURLToPath(new URL('./postgres-as-root-preload.ts', import.meta.url));

export interface TaskLogLine {
  level: string;
  message: string;
  [key: string]: unknown;
}

export interface TaskExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  logs: TaskLogLine[];
  /** Output lines that were not JSON log lines (there should be none). */
  otherOutput: string[];
}

export interface RunningTask {
  child: ChildProcess;
  logs: TaskLogLine[];
  exited: Promise<TaskExit>;
  waitForLog(predicate: (line: TaskLogLine) => boolean, timeoutMs?: number): Promise<TaskLogLine>;
  onLog(listener: (line: TaskLogLine) => void): void;
}

export interface StartTaskOptions {
  command: string;
  /** The task's whole environment (nothing is inherited but PATH and HOME). */
  env: Record<string, string>;
  /** A bundled entry (dist/task/main.mjs) to run instead of the TypeScript source. */
  bundledEntry?: string;
}

export function startTask({ command, env, bundledEntry }: StartTaskOptions): RunningTask {
  // When the test run records AWS calls (the authorization model checks them), the source run
  // preloads the recorder; a bundle has its own copy of the SDK, which the preload cannot reach.
  const recording = !bundledEntry && isComponent(command) ? recordingEnvironment(command) : {};
  const preload = Object.keys(recording).length > 0 ? ['--import', RECORDER_PRELOAD] : [];
  // As root (CI, this machine), the drill's throwaway cluster must run as the postgres user, which
  // the container's task never needs (dev/postgres-as-root.ts); a bundle runs as the container does.
  const asRoot = process.getuid?.() === 0 ? ['--import', POSTGRES_AS_ROOT_PRELOAD] : [];
  const args = bundledEntry ? [bundledEntry, command] : ['--import', 'tsx', ...asRoot, ...preload, TASK_SOURCE_ENTRY, command];
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env, ...recording },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return watchTask(child);
}

/**
 * Reads a started task's JSON log lines from its stdout and stderr, however it was started (as a
 * plain process above, or inside an emulated container).
 */
export function watchTask(child: ChildProcess): RunningTask {
  const logs: TaskLogLine[] = [];
  const otherOutput: string[] = [];
  const listeners: ((line: TaskLogLine) => void)[] = [];
  const waiters: { predicate: (line: TaskLogLine) => boolean; resolve: (line: TaskLogLine) => void }[] = [];

  const accept = (text: string): void => {
    for (const raw of text.split('\n')) {
      if (raw.trim() === '') continue;
      let line: TaskLogLine | undefined;
      try {
        const parsed = JSON.parse(raw) as unknown;
        if (parsed && typeof parsed === 'object' && 'message' in parsed) line = parsed as TaskLogLine;
      } catch {
        // not a log line
      }
      if (!line) {
        otherOutput.push(raw);
        continue;
      }
      logs.push(line);
      for (const listener of listeners) listener(line);
      for (const waiter of [...waiters]) {
        if (waiter.predicate(line)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    }
  };
  for (const stream of [child.stdout, child.stderr]) {
    let buffered = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (text: string) => {
      buffered += text;
      const end = buffered.lastIndexOf('\n');
      if (end >= 0) {
        accept(buffered.slice(0, end));
        buffered = buffered.slice(end + 1);
      }
    });
    stream?.on('end', () => accept(buffered));
  }

  const exited = new Promise<TaskExit>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal, logs, otherOutput }));
  });
  return {
    child,
    logs,
    exited,
    onLog: (listener) => listeners.push(listener),
    waitForLog: (predicate, timeoutMs = 120_000) => {
      const seen = logs.find(predicate);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out waiting for a task log line; saw: ${logs.map((line) => line.message).join(', ')}`)),
          timeoutMs,
        );
        void exited.then(() => {
          clearTimeout(timer);
          reject(new Error(`the task exited before the expected log line; saw: ${logs.map((line) => line.message).join(', ')}`));
        });
        waiters.push({
          predicate,
          resolve: (line) => {
            clearTimeout(timer);
            resolve(line);
          },
        });
      });
    },
  };
}
