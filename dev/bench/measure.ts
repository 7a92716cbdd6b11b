/** Measuring processes through /proc: peak memory (RSS), CPU time, storage writes, and the machine's load. */
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

const SAMPLE_INTERVAL_MS = 100;

export const MIB = 2 ** 20;
export const MB = 1e6;
const CLOCK_TICKS_PER_SECOND = 100;

/** What one run of one scenario measured. */
export interface RunMeasurement {
  seconds: number;
  outputBytes: number;
  /** Peak VmHWM of the measured process (pgkeep: the task's node process). */
  peakRssBytes?: number;
  /** Peak of the summed RSS of the process tree (pgkeep: node + pg_dump + zstd). */
  peakTreeRssBytes?: number;
  /** Peak bytes in the task's TMPDIR (pgkeep) or the dump file (recipe). */
  tempDiskBytes?: number;
  /** Bytes the measured processes wrote to storage (/proc/<pid>/io write_bytes). */
  storageWriteBytes?: number;
  /**
   * Busy core-seconds of the whole machine during the run, and its parts: the measured processes
   * (by command name in byCommand), PostgreSQL's server processes, the S3 server, this benchmark
   * process, and `other` — whatever else ran on the machine, which makes a run unrepresentative.
   */
  cpu: { machine: number; measured: number; postgres: number; s3Server: number; bench: number; other: number; byCommand: Record<string, number> };
  /** Seconds spent waiting for the machine to become quiet before the run. */
  quietWaitSeconds?: number;
  extra?: Record<string, number>;
}

interface ProcStat {
  command: string;
  ppid: number;
  cpuTicks: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses; the rest follows the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // fields[1] is the ppid (stat field 4), fields[11] and [12] utime and stime (fields 14, 15).
    return { command: text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')), ppid: Number(fields[1]), cpuTicks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return undefined; // exited between listing and reading
  }
}

/** Only for the measured processes: reading these for every process would cost the benchmark CPU it measures. */
function readMemoryAndWrites(pid: number): { rssBytes: number; hwmBytes: number; writeBytes: number } {
  let rssBytes = 0;
  let hwmBytes = 0;
  let writeBytes = 0;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    rssBytes = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
    hwmBytes = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
    writeBytes = Number(/^write_bytes:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0);
  } catch {
    // exited meanwhile
  }
  return { rssBytes, hwmBytes, writeBytes };
}

function listProcesses(): Map<number, ProcStat> {
  const processes = new Map<number, ProcStat>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat) processes.set(Number(entry), stat);
  }
  return processes;
}

function descendantsOf(roots: number[], processes: Map<number, ProcStat>): Set<number> {
  const tree = new Set(roots.filter((pid) => processes.has(pid)));
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, sample] of processes) {
      if (!tree.has(pid) && tree.has(sample.ppid)) {
        tree.add(pid);
        grew = true;
      }
    }
  }
  return tree;
}

function machineBusyTicks(): number {
  const [cpuLine = ''] = readFileSync('/proc/stat', 'utf8').split('\n', 1);
  const [, ...ticks] = cpuLine.trim().split(/\s+/).map(Number);
  // user nice system idle iowait irq softirq steal: busy is everything but idle and iowait.
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = ticks;
  return user + nice + system + irq + softirq + steal;
}

/**
 * Samples, every 100 ms, the processes of one scenario (their trees), PostgreSQL's processes and the
 * S3 server: peak memory, CPU and storage writes. CPU is counted per process from its first to its
 * last sample, so a process loses at most the last 100 ms before it exits; the machine's total busy
 * time (/proc/stat) is exact and is what the verdict on CPU saturation rests on.
 */
export class RunSampler {
  private readonly timer: NodeJS.Timeout;
  private readonly startTicks = machineBusyTicks();
  private readonly startBenchCpu = process.cpuUsage();
  private readonly cpuFirst = new Map<number, number>();
  private readonly cpuLast = new Map<number, { ticks: number; group: 'measured' | 'postgres' | 's3Server'; command: string }>();
  private readonly writeFirst = new Map<number, number>();
  private readonly writeLast = new Map<number, number>();
  private readonly roots: number[] = [];
  peakRootHwm = 0;
  peakTreeRss = 0;
  peakTempBytes = 0;
  /** When each command of the measured tree was first and last seen (performance.now()). */
  readonly seen = new Map<string, { first: number; last: number }>();

  constructor(private readonly context: { postmasterPid: number | undefined; s3ServerPid: number; tempDir?: string }) {
    this.sample(true);
    this.timer = setInterval(() => this.sample(false), SAMPLE_INTERVAL_MS);
  }

  /** The measured processes (their descendants are included). */
  track(pid: number | undefined): void {
    if (pid !== undefined) this.roots.push(pid);
    this.sample(false);
  }

  finish(): Pick<RunMeasurement, 'cpu' | 'storageWriteBytes'> {
    clearInterval(this.timer);
    this.sample(false);
    const cpu: RunMeasurement['cpu'] = {
      machine: (machineBusyTicks() - this.startTicks) / CLOCK_TICKS_PER_SECOND,
      measured: 0,
      postgres: 0,
      s3Server: 0,
      bench: 0,
      other: 0,
      byCommand: {},
    };
    for (const [pid, last] of this.cpuLast) {
      const seconds = (last.ticks - (this.cpuFirst.get(pid) ?? 0)) / CLOCK_TICKS_PER_SECOND;
      cpu[last.group] += seconds;
      if (last.group === 'measured') cpu.byCommand[last.command] = (cpu.byCommand[last.command] ?? 0) + seconds;
    }
    const benchCpu = process.cpuUsage(this.startBenchCpu);
    cpu.bench = (benchCpu.user + benchCpu.system) / 1e6;
    cpu.other = Math.max(0, cpu.machine - cpu.measured - cpu.postgres - cpu.s3Server - cpu.bench);
    let storageWriteBytes = 0;
    for (const [pid, last] of this.writeLast) storageWriteBytes += last - (this.writeFirst.get(pid) ?? 0);
    return { cpu, storageWriteBytes };
  }

  private sample(baseline: boolean): void {
    const processes = listProcesses();
    const measured = descendantsOf(this.roots, processes);
    const postgres = descendantsOf(this.context.postmasterPid === undefined ? [] : [this.context.postmasterPid], processes);
    const s3Server = descendantsOf([this.context.s3ServerPid], processes);
    let treeRss = 0;
    for (const [group, pids] of [
      ['measured', measured],
      ['postgres', postgres],
      ['s3Server', s3Server],
    ] as const) {
      for (const pid of pids) {
        const sample = processes.get(pid);
        if (!sample) continue;
        // A process present at the start counts from there; one started later counts from zero.
        if (!this.cpuFirst.has(pid)) this.cpuFirst.set(pid, baseline ? sample.cpuTicks : 0);
        this.cpuLast.set(pid, { ticks: sample.cpuTicks, group, command: sample.command });
        if (group === 'measured') {
          const now = performance.now();
          const seen = this.seen.get(sample.command);
          if (seen) seen.last = now;
          else this.seen.set(sample.command, { first: now, last: now });
        }
        if (group === 'measured') {
          const memory = readMemoryAndWrites(pid);
          treeRss += memory.rssBytes;
          if (this.roots.includes(pid)) this.peakRootHwm = Math.max(this.peakRootHwm, memory.hwmBytes);
          if (!this.writeFirst.has(pid)) this.writeFirst.set(pid, 0);
          this.writeLast.set(pid, memory.writeBytes);
        }
      }
    }
    this.peakTreeRss = Math.max(this.peakTreeRss, treeRss);
    if (this.context.tempDir) this.peakTempBytes = Math.max(this.peakTempBytes, directoryBytes(this.context.tempDir));
  }
}

/**
 * This machine may be shared (other test runs, builds). Waits, up to --quiet-wait-max-seconds, until the
 * machine is nearly idle before a run, so that other work does not land in one scenario only;
 * what still runs alongside is reported per run as `cpu.other`.
 */
const QUIET_BUSY_CORES = 0.25;

export async function waitForQuietMachine(maxSeconds: number): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < maxSeconds * 1000) {
    const before = machineBusyTicks();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    if ((machineBusyTicks() - before) / CLOCK_TICKS_PER_SECOND < QUIET_BUSY_CORES) break;
  }
  return (performance.now() - started) / 1000;
}

function directoryBytes(directory: string): number {
  let total = 0;
  let entries: string[];
  try {
    entries = readdirSync(directory);
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const full = path.join(directory, entry);
    try {
      const info = lstatSync(full);
      // Allocated blocks, or the size where data is not yet allocated (delayed allocation).
      total += info.isDirectory() ? directoryBytes(full) : Math.max(info.size, info.blocks * 512);
    } catch {
      // removed while counting
    }
  }
  return total;
}

export function readPostmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n', 1)[0] ?? '', 10);
    return Number.isInteger(pid) ? pid : undefined;
  } catch {
    // As root the data directory belongs to the postgres user and is still readable; elsewhere the
    // server's CPU is simply not broken out.
    return undefined;
  }
}
