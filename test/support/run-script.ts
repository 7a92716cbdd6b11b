import { spawn } from 'node:child_process';
import { REPO_ROOT } from '../../dev/task-process.ts';

export interface ScriptOutcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one of the repository's TypeScript scripts (as `npm start`/`npm run bench` do) to its end, in `env` (default: this process's). */
export function runScript(scriptPath: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<ScriptOutcome> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', scriptPath, ...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
