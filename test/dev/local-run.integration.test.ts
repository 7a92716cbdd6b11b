import { describe, expect, it } from 'vitest';
import { startThrowawayCluster } from '../../task/throwaway-cluster.ts';
import { createTinyShop, withClient } from '../support/backup-harness.ts';
import { runScript, type ScriptOutcome } from '../support/run-script.ts';

function runLocalPipeline(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<ScriptOutcome> {
  return runScript('dev/local-run.ts', args, env);
}

describe('npm start (the local run of the whole pipeline)', () => {
  it('backs up a sample database to a local S3 server, reads it back, and reports it as one JSON line', async () => {
    const { code, stdout, stderr } = await runLocalPipeline(['--json', '--size-mb', '20']);

    expect(code, stderr).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1); // with --json, stdout carries nothing but the summary
    const summary = JSON.parse(lines[0]!) as {
      ok: boolean;
      backup: { key: string; bytes: number; sha256: string; durationMs: number };
      readBack: { sha256Matches: boolean; tocEntries: number };
    };
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

  it('backs up your database with --database-url, taking the password from PGPASSWORD as the README says', async () => {
    // Arrange: a real server whose TCP logins need a SCRAM password, and a URL without one.
    const cluster = await startThrowawayCluster();
    try {
      await cluster.createDatabase('yours');
      await withClient(cluster.connectionString('yours'), createTinyShop);
      const urlWithoutPassword = `postgresql://${encodeURIComponent(cluster.user)}@127.0.0.1:${cluster.port}/yours`;

      // Act
      const { code, stdout, stderr } = await runLocalPipeline(['--json', '--database-url', urlWithoutPassword], {
        ...process.env,
        PGPASSWORD: cluster.password,
      });

      // Assert
      expect(code, stderr).toBe(0);
      const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as { ok: boolean; backup: { key: string } };
      expect(summary.ok).toBe(true);
      expect(summary.backup.key).toMatch(/^backups\/yours\//);
      expect(stdout + stderr).not.toContain(cluster.password);
    } finally {
      await cluster.stop();
    }
  });

  it.each(['0x10', '8.0', '1e1', '0'])('refuses --size-mb %s with exit code 2 and the usage, before starting anything', async (value) => {
    const { code, stderr } = await runLocalPipeline(['--size-mb', value]);

    expect(code).toBe(2);
    expect(stderr).toContain(`--size-mb ${value} is invalid: expected a whole number of MB, 1 or more.`);
    expect(stderr).toContain('Usage: npm start -- [options]');
  });

  it.each([
    [['--s3-endpoint', 'http://127.0.0.1:9000'], '--bucket is required with --s3-endpoint: name the bucket on http://127.0.0.1:9000 to back up into.'],
    [['--bucket', 'my-bucket'], '--bucket my-bucket needs --s3-endpoint: without one, the run uses a bucket on its own local S3 server.'],
    [['--compression-level', '25'], '--compression-level 25 is invalid: expected a whole number from 1 to 19.'],
    [['--compression-level', '0x3'], '--compression-level 0x3 is invalid: expected a whole number from 1 to 19.'],
  ])('refuses %j with exit code 2 before starting anything, saying what to change', async (args, message) => {
    const { code, stdout, stderr } = await runLocalPipeline(args);

    expect(code).toBe(2);
    expect(stderr).toContain(message);
    expect(stdout).not.toContain('Starting a throwaway PostgreSQL cluster');
  });
});
