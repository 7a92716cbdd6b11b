/** The bench's command line: its flags, their defaults (the task's own pipeline defaults) and the scenarios. */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PIPELINE_DEFAULTS, parseDecimalInteger } from '../../task/config.ts';
import { REPO_ROOT } from '../task-process.ts';

export const USAGE = `Usage: npm run bench -- [options]

Measures pgkeep's backup against the read limit (pg_dump | zstd > /dev/null), the usual recipe
(pg_dump -Fc to a file, then upload) and the local S3 server alone, with alternating repeats.

Options:
  --size-mb N              size of the generated database in MiB (default 1000)
  --repeats N              measured runs of each scenario (default 5)
  --compression-level N    zstd level for the read limit and pgkeep (default: the task's, ${PIPELINE_DEFAULTS.compressionLevel})
  --compression-threads N  zstd threads for both, 0 = one per core (default: the task's, ${PIPELINE_DEFAULTS.compressionThreads})
  --part-size-mib N        pgkeep's first part size (default: the task's, ${PIPELINE_DEFAULTS.partSizeMib}; the local server takes at most 10)
  --parts-in-flight N      pgkeep's concurrent part uploads (default: the task's, ${PIPELINE_DEFAULTS.partsInFlight})
  --only LIST              comma-separated subset of read-limit,recipe,pgkeep,s3-alone,pgkeep-sink
  --fresh                  rebuild the cached sample database
  --json                   print one JSON object as the last line of stdout
  --cache-dir DIR          where generated databases are kept (default: .pgkeep-local)
  --quiet-wait-max-seconds N  before each run, wait up to N s for other load to stop (default 30;
                           0 = do not wait, for a smoke run on a busy machine)
  -h, --help               show this help
`;

const DEFAULT_CACHE_ROOT = path.join(REPO_ROOT, '.pgkeep-local');

const SCENARIOS = ['read-limit', 'recipe', 'pgkeep', 's3-alone', 'pgkeep-sink'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface BenchOptions {
  sizeMb: number;
  repeats: number;
  compressionLevel: number;
  compressionThreads: number;
  partSizeMib: number;
  partsInFlight: number;
  only: ScenarioName[];
  fresh: boolean;
  json: boolean;
  cacheRoot: string;
  quietWaitMaxSeconds: number;
}

export function parseOptions(): BenchOptions {
  const { values } = parseArguments();
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const whole = (name: keyof typeof values, min: number, max: number): number => {
    const raw = String(values[name]);
    const value = parseDecimalInteger(raw);
    if (value === undefined || value < min || value > max) {
      throw new UsageError(`--${name} ${raw} is invalid: expected a whole number from ${min} to ${max}.`);
    }
    return value;
  };
  const only = String(values.only)
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  const unknown = only.filter((name) => !(SCENARIOS as readonly string[]).includes(name));
  if (unknown.length > 0 || only.length === 0)
    throw new UsageError(`--only ${values.only} is invalid: expected a comma-separated subset of ${SCENARIOS.join(',')}.`);
  return {
    sizeMb: whole('size-mb', 10, 1_000_000),
    repeats: whole('repeats', 1, 100),
    compressionLevel: whole('compression-level', 1, 19),
    compressionThreads: whole('compression-threads', 0, 256),
    partSizeMib: whole('part-size-mib', 6, 512),
    partsInFlight: whole('parts-in-flight', 1, 16),
    // Keep the documented order: s3-alone uploads as many bytes as pgkeep produced.
    only: SCENARIOS.filter((name) => only.includes(name)),
    fresh: Boolean(values.fresh),
    json: Boolean(values.json),
    cacheRoot: path.resolve(String(values['cache-dir'])),
    quietWaitMaxSeconds: whole('quiet-wait-max-seconds', 0, 3_600),
  };
}

export class UsageError extends Error {}

function parseArguments() {
  try {
    return parseArgs({
      options: {
        'size-mb': { type: 'string', default: '1000' },
        repeats: { type: 'string', default: '5' },
        'compression-level': { type: 'string', default: String(PIPELINE_DEFAULTS.compressionLevel) },
        'compression-threads': { type: 'string', default: String(PIPELINE_DEFAULTS.compressionThreads) },
        'part-size-mib': { type: 'string', default: String(PIPELINE_DEFAULTS.partSizeMib) },
        'parts-in-flight': { type: 'string', default: String(PIPELINE_DEFAULTS.partsInFlight) },
        only: { type: 'string', default: SCENARIOS.join(',') },
        fresh: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        'cache-dir': { type: 'string', default: DEFAULT_CACHE_ROOT },
        'quiet-wait-max-seconds': { type: 'string', default: '30' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      allowPositionals: false,
    });
  } catch (error) {
    throw new UsageError(`${(error as Error).message}.`);
  }
}
