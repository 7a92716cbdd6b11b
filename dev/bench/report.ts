/** The summary: medians per scenario, the targets' verdicts, the table on stdout and the --json object (its last line). */
import os from 'node:os';
import { MB, MIB, type RunMeasurement } from './measure.ts';
import type { BenchOptions, ScenarioName } from './options.ts';

/** Targets on a 2-core machine (issue 7). */
const TARGETS = { ratioToReadLimit: 1.15, speedupVsRecipe: 2, peakRssMb: 256, tempDiskBytes: 0 } as const;

interface ScenarioSummary {
  runsSeconds: number[];
  medianSeconds: number;
  databaseMBps: number;
  outputBytes: number;
  peakRssMb: number | null;
  peakTreeRssMb: number | null;
  tempDiskBytes: number | null;
  storageWriteBytes: number | null;
  /** Medians, in core-seconds. */
  cpu: RunMeasurement['cpu'] & { machineBusyPercent: number };
  details: Record<string, number>;
  /** Seconds spent, over all runs, waiting for other load on the machine to stop. */
  quietWaitSeconds: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

export const round = (value: number, digits = 2): number => Number(value.toFixed(digits));
export const roundAll = (values: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(values).map(([name, value]) => [name, round(value, 1)]));

function summarizeScenario(runs: RunMeasurement[], databaseBytes: number): ScenarioSummary {
  const medianOf = (pick: (run: RunMeasurement) => number): number => median(runs.map(pick));
  const maxOf = (pick: (run: RunMeasurement) => number | undefined): number | null => {
    const values = runs.map(pick).filter((value): value is number => value !== undefined);
    return values.length > 0 ? Math.max(...values) : null;
  };
  const medianSeconds = medianOf((run) => run.seconds);
  const cores = os.cpus().length;
  const details: Record<string, number> = {};
  for (const name of Object.keys(runs[0]?.extra ?? {}))
    details[name] = round(
      medianOf((run) => run.extra?.[name] ?? 0),
      3,
    );
  const peakRss = maxOf((run) => run.peakRssBytes);
  const peakTreeRss = maxOf((run) => run.peakTreeRssBytes);
  return {
    runsSeconds: runs.map((run) => round(run.seconds, 3)),
    medianSeconds: round(medianSeconds, 3),
    databaseMBps: round(databaseBytes / MB / medianSeconds, 1),
    outputBytes: Math.round(medianOf((run) => run.outputBytes)),
    peakRssMb: peakRss === null ? null : round(peakRss / MIB, 1),
    peakTreeRssMb: peakTreeRss === null ? null : round(peakTreeRss / MIB, 1),
    tempDiskBytes: maxOf((run) => run.tempDiskBytes),
    storageWriteBytes: maxOf((run) => run.storageWriteBytes),
    cpu: {
      machine: round(medianOf((run) => run.cpu.machine)),
      measured: round(medianOf((run) => run.cpu.measured)),
      postgres: round(medianOf((run) => run.cpu.postgres)),
      s3Server: round(medianOf((run) => run.cpu.s3Server)),
      bench: round(medianOf((run) => run.cpu.bench)),
      other: round(medianOf((run) => run.cpu.other)),
      byCommand: Object.fromEntries(
        Object.keys(runs[0]?.cpu.byCommand ?? {}).map((command) => [command, round(medianOf((run) => run.cpu.byCommand[command] ?? 0))]),
      ),
      machineBusyPercent: round((100 * medianOf((run) => run.cpu.machine / run.seconds)) / cores, 0),
    },
    details,
    quietWaitSeconds: round(
      runs.reduce((total, run) => total + (run.quietWaitSeconds ?? 0), 0),
      1,
    ),
  };
}

export function summarize(options: BenchOptions, databaseBytes: number, runs: Map<ScenarioName, RunMeasurement[]>) {
  const scenarios: Partial<Record<ScenarioName, ScenarioSummary>> = {};
  for (const [name, measurements] of runs) scenarios[name] = summarizeScenario(measurements, databaseBytes);
  const readLimit = scenarios['read-limit'];
  const recipe = scenarios.recipe;
  const pgkeep = scenarios.pgkeep;
  const s3Alone = scenarios['s3-alone'];
  const ratio = (a: number | undefined, b: number | undefined): number | null => (a !== undefined && b !== undefined && b > 0 ? round(a / b, 3) : null);
  const result = {
    sizeMb: options.sizeMb,
    databaseBytes,
    repeats: options.repeats,
    cpuCores: os.cpus().length,
    compressionLevel: options.compressionLevel,
    compressionThreads: options.compressionThreads,
    partSizeMib: options.partSizeMib,
    partsInFlight: options.partsInFlight,
    readLimitSeconds: readLimit?.medianSeconds ?? null,
    recipeSeconds: recipe?.medianSeconds ?? null,
    pgkeepSeconds: pgkeep?.medianSeconds ?? null,
    s3ServerAloneSeconds: s3Alone?.medianSeconds ?? null,
    ratioToReadLimit: ratio(pgkeep?.medianSeconds, readLimit?.medianSeconds),
    speedupVsRecipe: ratio(recipe?.medianSeconds, pgkeep?.medianSeconds),
    ratioToS3ServerAlone: ratio(pgkeep?.medianSeconds, s3Alone?.medianSeconds),
    /** pgkeep against a stand-in that discards the bytes: its own overhead, without the local server's. */
    pgkeepToSinkSeconds: scenarios['pgkeep-sink']?.medianSeconds ?? null,
    sinkRatioToReadLimit: ratio(scenarios['pgkeep-sink']?.medianSeconds, readLimit?.medianSeconds),
    /** How long the local server takes to assemble an object of pgkeep's size at CompleteMultipartUpload. */
    s3ServerCompleteSeconds: s3Alone?.details.completeSeconds ?? null,
    peakRssMb: pgkeep?.peakRssMb ?? null,
    peakTreeRssMb: pgkeep?.peakTreeRssMb ?? null,
    tempDiskBytes: pgkeep?.tempDiskBytes ?? null,
    targets: {} as Record<string, { target: string; met: boolean | null }>,
    targetsMet: null as boolean | null,
    scenarios,
  };
  const check = (value: number | null, met: (value: number) => boolean): boolean | null => (value === null ? null : met(value));
  result.targets = {
    ratioToReadLimit: { target: `<= ${TARGETS.ratioToReadLimit}`, met: check(result.ratioToReadLimit, (value) => value <= TARGETS.ratioToReadLimit) },
    speedupVsRecipe: { target: `>= ${TARGETS.speedupVsRecipe}`, met: check(result.speedupVsRecipe, (value) => value >= TARGETS.speedupVsRecipe) },
    peakRssMb: { target: `<= ${TARGETS.peakRssMb}`, met: check(result.peakRssMb, (value) => value <= TARGETS.peakRssMb) },
    tempDiskBytes: { target: `= ${TARGETS.tempDiskBytes}`, met: check(result.tempDiskBytes, (value) => value === TARGETS.tempDiskBytes) },
  };
  const verdicts = Object.values(result.targets).map((target) => target.met);
  result.targetsMet = verdicts.includes(null) ? null : verdicts.every(Boolean);
  return result;
}

type Summary = ReturnType<typeof summarize>;

export function renderTable(summary: Summary): string {
  const mb = (bytes: number | null): string => (bytes === null ? '-' : (bytes / MB).toFixed(1));
  const header = [
    'scenario',
    'median s',
    'runs s',
    'DB MB/s',
    'output MB',
    'peak RSS MiB',
    'tree RSS MiB',
    'temp disk MB',
    'CPU busy %',
    'S3 server core-s',
    'other load core-s',
  ];
  const labels: Record<ScenarioName, string> = {
    'read-limit': 'read limit',
    recipe: 'usual recipe',
    pgkeep: 'pgkeep',
    's3-alone': 'S3 server alone',
    'pgkeep-sink': 'pgkeep -> discarding stand-in',
  };
  const rows = (Object.entries(summary.scenarios) as [ScenarioName, ScenarioSummary][]).map(([name, scenario]) => [
    labels[name],
    scenario.medianSeconds.toFixed(2),
    scenario.runsSeconds.map((seconds) => seconds.toFixed(2)).join(' '),
    name === 's3-alone' ? '-' : scenario.databaseMBps.toFixed(0),
    mb(scenario.outputBytes),
    scenario.peakRssMb === null ? '-' : scenario.peakRssMb.toFixed(0),
    scenario.peakTreeRssMb === null ? '-' : scenario.peakTreeRssMb.toFixed(0),
    mb(scenario.tempDiskBytes),
    String(scenario.cpu.machineBusyPercent),
    scenario.cpu.s3Server.toFixed(1),
    scenario.cpu.other.toFixed(1),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]): string => `| ${cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join(' | ')} |`;
  const verdict = (name: keyof typeof TARGETS, value: number | null): string => {
    const target = summary.targets[name];
    return `${name} = ${value ?? '-'} (target ${target?.target ?? '?'}: ${target?.met === null ? 'not measured' : target?.met ? 'met' : 'NOT met'})`;
  };
  const noisy = Object.entries(summary.scenarios)
    .filter(([, scenario]) => scenario.cpu.other > 0.05 * summary.cpuCores * scenario.medianSeconds)
    .map(([name, scenario]) => `${name} (${scenario.cpu.other.toFixed(1)} core-s)`);
  return [
    ...(noisy.length > 0
      ? ['', `WARNING: other processes used CPU during ${noisy.join(', ')}: the machine was not idle and these timings are pessimistic.`]
      : []),
    '',
    `Database: ${(summary.databaseBytes / MB).toFixed(0)} MB (pg_database_size; MB = 10^6 bytes), ${summary.repeats} alternating repeats, ${summary.cpuCores} cores.`,
    `zstd -${summary.compressionLevel} -T${summary.compressionThreads}; pgkeep parts from ${summary.partSizeMib} MiB, ${summary.partsInFlight} in flight.`,
    '',
    line(header),
    line(widths.map((width) => '-'.repeat(width))),
    ...rows.map(line),
    '',
    verdict('ratioToReadLimit', summary.ratioToReadLimit),
    verdict('speedupVsRecipe', summary.speedupVsRecipe),
    verdict('peakRssMb', summary.peakRssMb),
    verdict('tempDiskBytes', summary.tempDiskBytes),
    `ratioToS3ServerAlone = ${summary.ratioToS3ServerAlone ?? '-'} (pgkeep / the local S3 server taking the same bytes from memory)`,
    `s3ServerCompleteSeconds = ${summary.s3ServerCompleteSeconds ?? '-'} (the local server assembling the object at CompleteMultipartUpload, which ends every pgkeep run)`,
    `sinkRatioToReadLimit = ${summary.sinkRatioToReadLimit ?? '-'} (pgkeep against a stand-in that discards the bytes / read limit: pgkeep's own overhead)`,
    '',
  ].join('\n');
}
