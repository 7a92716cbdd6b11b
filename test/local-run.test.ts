import { describe, expect, it } from 'vitest';
import { runScript, type ScriptOutcome } from './support/run-script.ts';

function runLocalPipeline(args: string[]): Promise<ScriptOutcome> {
  return runScript('scripts/local-run.ts', args);
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
