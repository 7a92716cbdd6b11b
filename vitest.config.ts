import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';
import { RECORDINGS_ENV } from './test/support/aws-call-recorder.ts';

/**
 * The suites record the AWS calls each component sends into a directory made fresh for this run
 * (test/support/aws-call-recorder.ts); the authorization model (test/infra/authz-model.test.ts) checks exactly
 * those recordings, never older ones. The config is evaluated once, in vitest's main process, before
 * any worker exists, so every worker and every process they start sees the same directory.
 */
// Vite may evaluate this file more than once in the same process: the first evaluation's directory is the run's.
const RECORDINGS_OWNER = 'PGKEEP_AWS_CALL_RECORDINGS_PID';
const inherited = process.env[RECORDINGS_OWNER] === String(process.pid) ? process.env[RECORDINGS_ENV] : undefined;
const recordings = inherited ?? mkdtempSync(join(tmpdir(), 'pgkeep-aws-calls-'));
process.env[RECORDINGS_ENV] = recordings;
process.env[RECORDINGS_OWNER] = String(process.pid);
// PGKEEP_KEEP_AWS_CALL_RECORDINGS=1 keeps them for a look (the model still reads only this run's).
if (!inherited)
  process.on('exit', () => {
    if (process.env.PGKEEP_KEEP_AWS_CALL_RECORDINGS === '1') console.error(`AWS call recordings kept in ${recordings}`);
    else rmSync(recordings, { recursive: true, force: true });
  });

export const AUTHORIZATION_MODEL_TEST = 'test/infra/authz-model.test.ts';
/** Every suite that starts a PostgreSQL cluster, an S3 server or the task as a child process (docs/testing.md). */
export const INTEGRATION_TESTS = '**/*.integration.test.ts';
// `npm run test:unit` (PGKEEP_TEST_SCOPE=unit, with --project suites): only the other suites. A CLI
// --exclude does not reach a project's own exclude list, hence the variable.
const unitOnly = process.env.PGKEEP_TEST_SCOPE === 'unit';

export default defineConfig({
  test: {
    // Integration suites start real PostgreSQL clusters and S3 servers; on a 2-core machine
    // running them all at once makes them contend for CPU, so cap the workers.
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
    // As root (CI), every worker's throwaway PostgreSQL clusters run as the postgres user (dev/postgres-as-root.ts).
    setupFiles: ['dev/postgres-as-root-preload.ts'],
    env: { [RECORDINGS_ENV]: recordings },
    // Two groups, run one after the other: every suite first, then the model over what they recorded.
    // groupOrder is Vitest's own guarantee that group 1 starts only after group 0 has finished, which
    // neither file order nor a custom sequencer gives with two workers running files in parallel.
    projects: [
      {
        extends: true,
        test: {
          name: 'suites',
          include: ['test/**/*.test.ts'],
          exclude: [AUTHORIZATION_MODEL_TEST, ...(unitOnly ? [INTEGRATION_TESTS] : [])],
          sequence: { groupOrder: 0 },
        },
      },
      { extends: true, test: { name: 'authorization-model', include: [AUTHORIZATION_MODEL_TEST], sequence: { groupOrder: 1 } } },
    ],
  },
});
