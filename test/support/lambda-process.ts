/**
 * Invokes a pgkeep function's real handler the way Lambda would (test/support/lambda-runner.ts)
 * in its own process: only the environment given (what the stack sets, plus where AWS is), the
 * function's timeout, and the recording preload when this run records AWS calls.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RECORDER_PRELOAD, recordingEnvironment, type Component } from './aws-call-recorder.ts';

const RUNNER = fileURLToPath(new URL('./lambda-runner.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface LambdaInvocation {
  component: Component;
  /** The handler's source, e.g. functions/verify-backup/handler.ts (relative to the repository). */
  handler: string;
  environment: Record<string, string>;
  event: unknown;
  /** The function's timeout: what context.getRemainingTimeInMillis() counts down from. */
  timeoutSeconds: number;
  /** When the test gives up and kills the process. */
  deadlineMs?: number;
}

export interface LambdaOutcome {
  result?: unknown;
  error?: string;
  /** Everything else it printed (its JSON log lines). */
  logs: string[];
}

export function invokeLikeLambda({ component, handler, environment, event, timeoutSeconds, deadlineMs = 100_000 }: LambdaInvocation): Promise<LambdaOutcome> {
  const recording = recordingEnvironment(component);
  const preload = Object.keys(recording).length > 0 ? ['--import', RECORDER_PRELOAD] : [];
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', ...preload, RUNNER, fileURLToPath(new URL(handler, `file://${REPO_ROOT}`)), String(timeoutSeconds)],
    {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...environment, ...recording },
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  child.stdin.end(JSON.stringify(event));
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (output += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (output += text));
  return new Promise((resolve, reject) => {
    // The test's deadline (a function's timeout can be 15 minutes), however long the function may run.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${handler} did not finish within ${deadlineMs} ms: ${output}`));
    }, deadlineMs);
    child.once('close', () => {
      clearTimeout(timer);
      const lines = output.split('\n').filter((line) => line.trim() !== '');
      const last = lines.at(-1) ?? '';
      try {
        const parsed = JSON.parse(last) as { result?: unknown; error?: string };
        if ('result' in parsed || 'error' in parsed) return resolve({ ...parsed, logs: lines.slice(0, -1) });
      } catch {
        // not the runner's last line: it crashed
      }
      reject(new Error(`${handler} crashed: ${output}`));
    });
  });
}
