/**
 * dev/compare-assemblies.ts: what a deployment of one cloud assembly would change against another.
 * Two synths of the shipped dev environment, one with its database's schedule moved.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { compare, stacksOf } from '../../dev/compare-assemblies.ts';
import { PGKEEP_ENVIRONMENTS } from '../../infra/environments.ts';
import { addPgkeepStacks } from '../../infra/pgkeep-app.ts';
import { scratchApp } from '../support/fixtures/infra-synth.ts';

const scratches: { dispose(): void }[] = [];
afterAll(() => scratches.forEach((scratch) => scratch.dispose()));

function synthesize(config: unknown): string {
  const scratch = scratchApp();
  scratches.push(scratch);
  addPgkeepStacks(scratch.app, { config, environment: 'dev' });
  scratch.app.synth();
  return scratch.outdir;
}

const shipped = synthesize(PGKEEP_ENVIRONMENTS);
const { dev } = PGKEEP_ENVIRONMENTS.environments;
const rescheduled = synthesize({
  environments: { dev: { ...dev, databases: [{ ...dev.databases[0], schedule: { cron: '0 3 * * ? *', timezone: 'Europe/Dublin' } }] } },
});

describe('comparing two cloud assemblies', () => {
  it('finds nothing between two synths of the same configuration', () => {
    expect(compare(stacksOf(shipped), stacksOf(synthesize(PGKEEP_ENVIRONMENTS)))).toEqual([]);
  });

  it('names the one resource a changed schedule changes, in the nested stack it is in', () => {
    const changes = compare(stacksOf(shipped), stacksOf(rescheduled));

    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatch(/^pgkeep-dev-pipeline\/DatabaseOrders\w+: Resources BackupOrdersSchedule\w+ changed$/);
  });
});
