import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../scripts/task-process.ts';

function runLocalPipeline(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/local-run.ts', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm start (the local run of the whole pipeline)', () => {
  it('backs up a sample database to a local S3 server, reads it back, and reports it as one JSON line', async () => {
    const { code, stdout, stderr } = await runLocalPipeline(['--json', '--size-mb', '20']);

    expect(code, stderr).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1); // with --json, stdout carries nothing but the summary
    const summary = JSON.parse(lines[0]!) as { ok: boolean; backup: { key: string; bytes: number; sha256: string; durationMs: number }; readBack: { sha256Matches: boolean; tocEntries: number } };
    expect(summary.ok).toBe(true);
    expect(summary.backup.key).toMatch(/^backups\/shop\/\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{6}\.dump\.zst$/);
    expect(summary.backup.bytes).toBeGreaterThan(0);
    expect(summary.backup.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(summary.backup.durationMs).toBeGreaterThan(0);
    expect(summary.readBack).toMatchObject({ sha256Matches: true });
    expect(summary.readBack.tocEntries).toBeGreaterThan(50);
    expect(stderr).toContain('Backup summary');
  });

  it('reports a failure as ok: false with the reason, and exits non-zero', async () => {
    const { code, stdout } = await runLocalPipeline(['--json', '--database-url', 'postgresql://nobody@127.0.0.1:1/none', '--size-mb', '1']);

    expect(code).toBe(1);
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as { ok: boolean; error: string };
    expect(summary.ok).toBe(false);
    expect(summary.error).toContain('Nothing accepts connections at 127.0.0.1:1');
  });
});
