/**
 * Runs a program inside an emulation of the pgkeep container as ECS runs it on Fargate: the image's
 * user, a read-only root filesystem, /tmp mounted the way ECS mounts the task volume for this image,
 * and exactly the container's environment. No Docker engine is needed: Linux namespaces and mounts
 * do it (test/support/fargate-container.sh), so it needs root.
 *
 * The rules it applies, and where they come from:
 * - The empty task volume at /tmp (task definition `volumes: [{ name: 'tmp' }]`, a bind mount) is
 *   owned by root with mode 0755, unless the image declares the same path with VOLUME, in which
 *   case ECS copies the image's directory (its contents, owner and mode) into the volume. AWS:
 *   "By default, the volume permissions are set to 0755 and the owner as root. These permissions
 *   can be customized in the Dockerfile." (Amazon ECS Developer Guide, "Use bind mounts with Amazon
 *   ECS", Considerations: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/bind-mounts.html)
 * - The image's mode for /tmp counts only if it is set before the VOLUME line: "If any build steps
 *   change the data within the volume after it has been declared, those changes will be discarded
 *   when using the legacy builder. When using Buildkit, the changes will instead be kept."
 *   (Dockerfile reference, VOLUME, "Notes about specifying volumes":
 *   https://docs.docker.com/reference/dockerfile/#notes-about-specifying-volumes). Set before, it
 *   holds with either builder; set after, it depends on which one built the image, so it is refused.
 * - The image's user and environment come from task/Dockerfile and its base image (the node image
 *   creates `node` as uid/gid 1000 and sets PATH, NODE_VERSION and YARN_VERSION:
 *   https://github.com/nodejs/docker-node/blob/main/24/bookworm-slim/Dockerfile). Inside the
 *   emulation /etc/passwd and /etc/group are this machine's with that user in place of whoever has
 *   its uid here, since initdb looks up the name of the user it runs as.
 *
 * What it cannot emulate: the image's own files (the programs are this machine's: its PostgreSQL,
 * zstd and Node 24 from node_modules, at this machine's paths; the bundle stands in for
 * /app/main.mjs), tini as PID 1 (the emulation's PID 1 is a shell, which reaps orphans as tini does),
 * the network (shared with this machine, so the task reaches the local servers on loopback), and
 * Fargate's kernel, memory and CPU limits.
 */
import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { watchTask, type TaskLogLine } from '../../dev/task-process.ts';

const SANDBOX_SCRIPT = fileURLToPath(new URL('./fargate-container.sh', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

// ---------------------------------------------------------------------------------------------
// The image, from task/Dockerfile

export interface ImageSpec {
  baseImage: string;
  /** The USER of the final stage, as written. */
  user: string;
  uid: number;
  gid: number;
  workdir: string;
  entrypoint: string[];
  /** The base image's environment, then the final stage's ENV lines. */
  environment: Record<string, string>;
  /** Paths declared with VOLUME in the final stage. */
  volumes: string[];
  /** /tmp's mode as the image states it (`RUN chmod <octal> /tmp`) before its VOLUME line. */
  tmpModeBeforeVolume: number | undefined;
  /** Set when a chmod of /tmp follows the VOLUME line (which builders disagree on). */
  tmpModeAfterVolume: number | undefined;
}

interface BaseImage {
  environment: Record<string, string>;
  users: Record<string, { uid: number; gid: number }>;
}

/**
 * What the base image brings, from its Dockerfile (https://github.com/nodejs/docker-node,
 * 24/bookworm-slim): no Docker here to read the image itself. PATH is Debian's, which the node image
 * keeps; NODE_VERSION is the Node this suite runs, which stands in for the image's.
 */
const BASE_IMAGES: Record<string, BaseImage> = {
  'node:24-bookworm-slim': {
    environment: {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      NODE_VERSION: process.versions.node,
      YARN_VERSION: '1.22.22',
    },
    users: { root: { uid: 0, gid: 0 }, node: { uid: 1000, gid: 1000 } },
  },
};

interface Instruction {
  keyword: string;
  args: string;
}

/** Dockerfile instructions: continuation lines joined, comment lines dropped (as Docker does). */
function instructionsOf(dockerfile: string): Instruction[] {
  const instructions: Instruction[] = [];
  let pending = '';
  for (const line of dockerfile.split('\n')) {
    if (/^\s*#/.test(line)) continue;
    if (pending === '' && line.trim() === '') continue;
    const continued = /\\\s*$/.test(line);
    pending += continued ? line.replace(/\\\s*$/, ' ') : line;
    if (continued) continue;
    const match = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(pending);
    if (match) instructions.push({ keyword: match[1]!.toUpperCase(), args: match[2]!.trim() });
    pending = '';
  }
  return instructions;
}

/** `ENV a=1 b="two words"` (and the legacy `ENV a 1`). */
function parseEnv(args: string): Record<string, string> {
  const legacy = /^([A-Za-z_][A-Za-z0-9_]*)\s+([^=]*)$/.exec(args);
  if (legacy && !args.includes('=')) return { [legacy[1]!]: legacy[2]!.trim() };
  const environment: Record<string, string> = {};
  for (const match of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g)) {
    const raw = match[2]!;
    environment[match[1]!] = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw.startsWith("'") ? raw.slice(1, -1) : raw;
  }
  return environment;
}

function parseList(args: string): string[] {
  if (args.startsWith('[')) return JSON.parse(args) as string[];
  return args.split(/\s+/).filter(Boolean);
}

const CHMOD_TMP = /(?:^|[;&|]\s*|\s)chmod\s+([0-7]{3,4})\s+\/tmp\/?(?=\s|;|&|\||$)/;

export function readImageSpec(dockerfile: string): ImageSpec {
  const instructions = instructionsOf(dockerfile);
  const lastFrom = instructions.map((instruction) => instruction.keyword).lastIndexOf('FROM');
  if (lastFrom < 0) throw new Error('task/Dockerfile has no FROM line');
  const baseImage = instructions[lastFrom]!.args.split(/\s+/)[0]!;
  const base = BASE_IMAGES[baseImage];
  if (!base)
    throw new Error(
      `task/Dockerfile's final stage is FROM ${baseImage}, whose user and environment this emulation does not know: add it to BASE_IMAGES in test/support/fargate-container.ts.`,
    );
  const stage = instructions.slice(lastFrom + 1);

  const environment = { ...base.environment };
  let user = 'root';
  let workdir = '/';
  let entrypoint: string[] = [];
  const volumes: string[] = [];
  let tmpModeBeforeVolume: number | undefined;
  let tmpModeAfterVolume: number | undefined;
  for (const { keyword, args } of stage) {
    if (keyword === 'ENV') Object.assign(environment, parseEnv(args));
    if (keyword === 'USER') user = args;
    if (keyword === 'WORKDIR') workdir = path.posix.resolve(workdir, args);
    if (keyword === 'ENTRYPOINT') entrypoint = parseList(args);
    if (keyword === 'VOLUME') volumes.push(...parseList(args).map((volume) => path.posix.normalize(volume).replace(/(.)\/$/, '$1')));
    const chmod = keyword === 'RUN' ? CHMOD_TMP.exec(args) : null;
    if (chmod) {
      const mode = Number.parseInt(chmod[1]!, 8);
      if (volumes.includes('/tmp')) tmpModeAfterVolume = mode;
      else tmpModeBeforeVolume = mode;
    }
  }
  const [name = user, group] = user.split(':');
  const ids = base.users[name] ?? (/^\d+$/.test(name) ? { uid: Number(name), gid: Number(name) } : undefined);
  if (!ids) throw new Error(`task/Dockerfile runs as USER ${user}, which ${baseImage} does not define as far as this emulation knows.`);
  const gid = group === undefined ? ids.gid : (base.users[group]?.gid ?? Number(group));
  return { baseImage, user, uid: ids.uid, gid, workdir, entrypoint, environment, volumes, tmpModeBeforeVolume, tmpModeAfterVolume };
}

export interface VolumeMount {
  mode: number;
  uid: number;
  gid: number;
  /** Which rule gave it, for messages. */
  rule: string;
}

/** How ECS mounts the empty task volume at /tmp for this image (the rules in this file's header). */
export function ecsTmpVolume(image: ImageSpec): VolumeMount {
  if (!image.volumes.includes('/tmp')) {
    return { mode: 0o755, uid: 0, gid: 0, rule: 'the image does not declare VOLUME ["/tmp"], so ECS mounts the empty volume owned by root with mode 0755' };
  }
  if (image.tmpModeAfterVolume !== undefined && image.tmpModeBeforeVolume === undefined) {
    throw new Error('task/Dockerfile sets the mode of /tmp after its VOLUME line, which the legacy Docker builder discards: set it before the VOLUME line.');
  }
  if (image.tmpModeBeforeVolume === undefined) {
    throw new Error(
      'task/Dockerfile declares VOLUME ["/tmp"] without stating the mode of /tmp: add `RUN chmod <mode> /tmp` before the VOLUME line, so the mode ECS copies into the volume is the one the Dockerfile says.',
    );
  }
  // The base image's /tmp is root's; the Dockerfile changes only its mode.
  return {
    mode: image.tmpModeBeforeVolume,
    uid: 0,
    gid: 0,
    rule: `the image declares VOLUME ["/tmp"] with /tmp at mode ${image.tmpModeBeforeVolume.toString(8)}, so ECS copies that directory into the volume`,
  };
}

// ---------------------------------------------------------------------------------------------
// The task definition, from the synthesized template

export interface TemplateContainer {
  Name: string;
  Command: string[];
  Environment?: { Name: string; Value: unknown }[];
  Secrets?: { Name: string; ValueFrom: string }[];
  ReadonlyRootFilesystem?: boolean;
  MountPoints?: { ContainerPath: string; SourceVolume: string; ReadOnly?: boolean }[];
  User?: string;
}

export interface TemplateTaskDefinition {
  Family: string;
  ContainerDefinitions: TemplateContainer[];
  Volumes?: ({ Name: string } & Record<string, unknown>)[];
  EphemeralStorage?: { SizeInGiB: number };
}

/** The one task definition whose container runs `command`. */
export function taskDefinitionFor(resources: Record<string, { Type: string; Properties: unknown }>, command: string): TemplateTaskDefinition {
  const matching = Object.values(resources)
    .filter((resource) => resource.Type === 'AWS::ECS::TaskDefinition')
    .map((resource) => resource.Properties as TemplateTaskDefinition)
    .filter((definition) => definition.ContainerDefinitions.some((container) => container.Command[0] === command));
  if (matching.length !== 1)
    throw new Error(`expected one task definition running "${command}", found ${matching.map((definition) => definition.Family).join(', ') || 'none'}`);
  return matching[0]!;
}

/**
 * What the emulation assumes of a task definition: one container, read-only root, no user override,
 * and exactly one writable mount, the empty task volume at /tmp. Anything else is a change the
 * emulation does not model, so it fails here instead of passing on a different container.
 */
export function assertEmulatedShape(definition: TemplateTaskDefinition): TemplateContainer {
  const [container, ...others] = definition.ContainerDefinitions;
  const problems: string[] = [];
  if (!container || others.length > 0) problems.push('it must have exactly one container');
  if (container?.ReadonlyRootFilesystem !== true) problems.push('its container must have readonlyRootFilesystem: true');
  if (container?.User !== undefined) problems.push(`its container overrides the image's user (${container?.User})`);
  const mounts = container?.MountPoints ?? [];
  const volumes = definition.Volumes ?? [];
  if (mounts.length !== 1 || mounts[0]!.ContainerPath !== '/tmp' || mounts[0]!.ReadOnly === true)
    problems.push(`its only mount must be a writable /tmp (found ${JSON.stringify(mounts)})`);
  const volume = volumes.find((candidate) => candidate.Name === mounts[0]?.SourceVolume);
  if (!volume || Object.keys(volume).some((key) => key !== 'Name'))
    problems.push(`/tmp must be an empty task volume (a bind mount with no host, EFS or Docker configuration; found ${JSON.stringify(volumes)})`);
  if (problems.length > 0) throw new Error(`task definition ${definition.Family} is not the container this emulation models: ${problems.join('; ')}.`);
  return container!;
}

// ---------------------------------------------------------------------------------------------
// The container's environment

/** What the test puts in place of what only exists in AWS. */
export interface LocalStandIns {
  bucket: string;
  /** The S3 server on loopback, and credentials it accepts (ECS would give the task role's). */
  s3: { endpoint: string; accessKeyId: string; secretAccessKey: string };
  /** A CloudWatch endpoint on loopback (AWS_ENDPOINT_URL_CLOUDWATCH). */
  cloudWatchEndpoint: string;
  /** The values ECS would read from Secrets Manager, by variable name. */
  secrets: Record<string, string>;
}

/** A KMS key ARN of the form CloudFormation fills in at deploy time; the local S3 server ignores SSE-KMS. */
function placeholderKeyArn(region: string, account: string): string {
  return `arn:aws:kms:${region}:${account}:key/00000000-0000-4000-8000-000000000000`;
}

/**
 * The container's environment in the order Docker and ECS build it: the image's (base image, then
 * Dockerfile ENV), what ECS adds on Fargate, the task definition's `environment` and `secrets`, then
 * the run's container overrides. Replaced: values CloudFormation only knows at deploy time (the
 * bucket, the KMS key ARN), the secrets, and AWS access (credentials instead of the task role's, the
 * S3 and CloudWatch endpoints on loopback). Left out: what ECS adds that only works inside AWS
 * (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, ECS_CONTAINER_METADATA_URI*, the agent's endpoints).
 */
export function containerEnvironment(options: {
  image: ImageSpec;
  container: TemplateContainer;
  region: string;
  account: string;
  local: LocalStandIns;
  overrides?: Record<string, string>;
}): Record<string, string> {
  const { image, container, region, account, local } = options;
  // The bucket is always the local one; the key ARN only needs its form.
  const standIns: Record<string, string> = { PGKEEP_BUCKET: local.bucket, PGKEEP_KMS_KEY_ID: placeholderKeyArn(region, account) };
  const fromTaskDefinition: Record<string, string> = {};
  for (const { Name: name, Value: value } of container.Environment ?? []) {
    const standIn = name === 'PGKEEP_BUCKET' || typeof value !== 'string' ? standIns[name] : value;
    if (standIn === undefined)
      throw new Error(`the task definition's ${name} is only known at deploy time (${JSON.stringify(value)}) and the emulation has no stand-in for it`);
    fromTaskDefinition[name] = standIn;
  }
  const fromSecrets: Record<string, string> = {};
  for (const { Name: name } of container.Secrets ?? []) {
    const value = local.secrets[name];
    if (value === undefined) throw new Error(`the task definition reads ${name} from Secrets Manager and the test gives no stand-in for it`);
    fromSecrets[name] = value;
  }
  return {
    ...image.environment,
    // Fargate sets these in every container (AWS_REGION and AWS_DEFAULT_REGION: the task's region).
    AWS_EXECUTION_ENV: 'AWS_ECS_FARGATE',
    AWS_REGION: region,
    AWS_DEFAULT_REGION: region,
    ...fromTaskDefinition,
    ...fromSecrets,
    PGKEEP_S3_ENDPOINT: local.s3.endpoint,
    AWS_ACCESS_KEY_ID: local.s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: local.s3.secretAccessKey,
    AWS_ENDPOINT_URL_CLOUDWATCH: local.cloudWatchEndpoint,
    ...options.overrides,
  };
}

// ---------------------------------------------------------------------------------------------
// Running

/** Node 24 as npm installs it for this project (node_modules/node-linux-<arch>). */
export const NODE_24 = path.join(REPO_ROOT, 'node_modules', `node-linux-${process.arch}`, 'bin', 'node');

/** Where the container's task volume is mounted: it hides whatever the machine has below it. */
const CONTAINER_TMP = '/tmp';

function isBelow(target: string, directory: string): boolean {
  const relative = path.relative(directory, target);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/**
 * The directory to stage the image's files in (the bundle, and Node when it must be copied). The
 * container's /tmp is a fresh volume that hides the machine's /tmp, so a checkout below /tmp (a CI
 * clone may well be one) cannot serve the image's files from .pgkeep-local: they are staged under
 * /var/tmp instead (FHS: a temporary directory that is not /tmp).
 */
export function imageFilesParent(): string {
  return isBelow(REPO_ROOT, CONTAINER_TMP) ? '/var/tmp' : path.join(REPO_ROOT, '.pgkeep-local');
}

/** Node 24 where the container can see it: a copy in the staging directory when the checkout is below /tmp. */
export async function nodeVisibleInContainer(stagingDir: string): Promise<string> {
  if (!isBelow(NODE_24, CONTAINER_TMP)) return NODE_24;
  const copy = path.join(stagingDir, 'node', 'bin', 'node');
  await mkdir(path.dirname(copy), { recursive: true, mode: 0o755 });
  await copyFile(NODE_24, copy);
  await chmod(copy, 0o755);
  return copy;
}

const TOOLS = [
  '/usr/bin/unshare',
  '/usr/bin/setpriv',
  '/usr/bin/strace',
  '/usr/bin/timeout',
  '/usr/bin/mount',
  '/usr/bin/find',
  '/usr/bin/stat',
  '/usr/bin/cat',
  '/usr/bin/env',
  '/bin/bash',
];

/**
 * Fails with what to do when this machine cannot run the emulation, rather than letting a test skip:
 * a suite that silently stops checking the container's rules would let defect 3 come back.
 */
export function assertCanEmulateFargate(image: ImageSpec, readablePaths: string[]): void {
  if (process.getuid?.() !== 0) {
    throw new Error("The Fargate container test needs root (mount namespaces, tmpfs mounts, dropping to the image's uid): run npm test as root, as CI does.");
  }
  const missing = TOOLS.filter((tool) => !existsSync(tool));
  if (missing.length > 0)
    throw new Error(`The Fargate container test needs ${missing.join(', ')} (Debian: apt-get install util-linux coreutils findutils strace).`);
  for (const target of readablePaths) {
    try {
      execFileSync('/usr/bin/setpriv', [`--reuid=${image.uid}`, `--regid=${image.gid}`, '--clear-groups', '--', '/usr/bin/test', '-r', target], {
        timeout: 10_000,
      });
    } catch {
      throw new Error(
        `uid ${image.uid} (the image's ${image.user} user) cannot read ${target}: every directory above it must be traversable by others ` +
          `(chmod o+x), or check the repository out under a directory that is.`,
      );
    }
  }
  accessSync(NODE_24, fsConstants.X_OK);
}

export interface MountEntry {
  id: number;
  parentId: number;
  mountPoint: string;
  options: string;
  fsType: string;
}

/** A write the kernel refused (read-only filesystem, or no permission), as strace logged it. */
export interface RefusedWrite {
  syscall: string;
  paths: string[];
  errno: string;
  line: string;
}

export interface ContainerRun {
  code: number | null;
  logs: TaskLogLine[];
  /** Output lines that were not JSON log lines. */
  otherOutput: string[];
  /** The mounts the program saw, covered ones left out. */
  mounts: MountEntry[];
  tmp: { mode: number; uid: number; gid: number };
  /** Files and directories left in /tmp and /dev/shm when the program had exited. */
  leftBehind: string[];
  /** Processes of the container still running after the program exited. */
  stillRunning: string[];
  refusedWrites: RefusedWrite[];
}

export interface RunOptions {
  image: ImageSpec;
  tmp: VolumeMount;
  /** Size of the task volume (the task definition's ephemeral storage). */
  tmpSizeGiB: number;
  environment: Record<string, string>;
  program: string[];
  /** Working directory: stands in for the image's WORKDIR. */
  workdir: string;
  deadlineSeconds: number;
}

export async function runInFargateContainer(options: RunOptions): Promise<ContainerRun> {
  // strace reopens its output by path (/proc/self/fd/4), which works for a file but not for the
  // socket Node makes of a 'pipe'. The file lives outside the container's view.
  const runDir = await mkdtemp(path.join(os.tmpdir(), 'pgkeep-fargate-run-'));
  const straceLog = path.join(runDir, 'strace.log');
  const straceFile = await open(straceLog, 'w+');
  try {
    const accounts = imageAccounts(options.image, await readFile('/etc/passwd', 'utf8'), await readFile('/etc/group', 'utf8'));
    await writeFile(path.join(runDir, 'passwd'), accounts.passwd, { mode: 0o644 });
    await writeFile(path.join(runDir, 'group'), accounts.group, { mode: 0o644 });
    return await runWithStraceLog(options, runDir, straceFile.fd, straceLog);
  } finally {
    await straceFile.close();
    await rm(runDir, { recursive: true, force: true });
  }
}

/**
 * This machine's users and groups, with the image's user in place of whoever has its uid or name
 * here: the node image creates node (1000:1000, home /home/node).
 */
export function imageAccounts(image: ImageSpec, passwd: string, group: string): { passwd: string; group: string } {
  const keep = (text: string, id: number) =>
    text
      .split('\n')
      .filter((line) => line !== '')
      .filter((line) => {
        const [name, , lineId] = line.split(':');
        return name !== image.user.split(':')[0] && Number(lineId) !== id;
      });
  const name = image.user.split(':')[0]!;
  return {
    passwd: [...keep(passwd, image.uid), `${name}:x:${image.uid}:${image.gid}::/home/${name}:/bin/bash`, ''].join('\n'),
    group: [...keep(group, image.gid), `${name}:x:${image.gid}:`, ''].join('\n'),
  };
}

async function runWithStraceLog(options: RunOptions, runDir: string, straceFd: number, straceLog: string): Promise<ContainerRun> {
  const { image, tmp } = options;
  const child = spawn(
    '/usr/bin/unshare',
    [
      '--mount',
      '--pid',
      '--ipc',
      '--fork',
      '--kill-child',
      '--mount-proc',
      '--',
      '/bin/bash',
      SANDBOX_SCRIPT,
      tmp.mode.toString(8),
      String(tmp.uid),
      String(tmp.gid),
      `${options.tmpSizeGiB}g`,
      String(image.uid),
      String(image.gid),
      path.join(runDir, 'passwd'),
      path.join(runDir, 'group'),
      options.workdir,
      String(options.deadlineSeconds),
      ...options.program,
    ],
    { cwd: '/', env: options.environment, stdio: ['ignore', 'pipe', 'pipe', 'pipe', straceFd] },
  );
  const report = readAll(child.stdio[3]);
  const task = watchTask(child);
  // The script's own deadline stops the program; this one stops the script (and, through
  // --kill-child, everything in its PID namespace) should it hang itself.
  const watchdog = setTimeout(() => child.kill('SIGKILL'), (options.deadlineSeconds + 20) * 1000);
  const exit = await task.exited.finally(() => clearTimeout(watchdog));
  const sections = parseReport(await report);
  if (exit.signal)
    throw new Error(`the emulated container was killed (${exit.signal}) after ${options.deadlineSeconds + 20} s; output: ${exit.otherOutput.join(' | ')}`);
  if (sections.exit === 124)
    throw new Error(
      `${options.program.join(' ')} did not finish within ${options.deadlineSeconds} s in the emulated container; logs: ${exit.logs.map((line) => line.message).join(', ')}`,
    );
  if (exit.code === 64 || exit.code === 70 || sections.exit === undefined) {
    throw new Error(`the emulated container could not be set up (exit ${exit.code}): ${exit.otherOutput.join(' | ')}`);
  }
  return {
    code: exit.code,
    logs: exit.logs,
    otherOutput: exit.otherOutput,
    mounts: visibleMounts(sections.mounts),
    tmp: sections.tmp,
    leftBehind: sections.leftBehind,
    stillRunning: sections.stillRunning,
    refusedWrites: parseRefusedWrites(await readFile(straceLog, 'utf8')),
  };
}

function readAll(stream: unknown): Promise<string> {
  const readable = stream as NodeJS.ReadableStream | null;
  if (!readable) return Promise.resolve('');
  return new Promise((resolve, reject) => {
    let text = '';
    readable.setEncoding('utf8');
    readable.on('data', (chunk: string) => (text += chunk));
    readable.once('end', () => resolve(text));
    readable.once('error', reject);
  });
}

function parseReport(text: string): { mounts: MountEntry[]; tmp: ContainerRun['tmp']; exit: number | undefined; leftBehind: string[]; stillRunning: string[] } {
  const sections = new Map<string, string[]>();
  let current: string[] | undefined;
  let exit: number | undefined;
  for (const line of text.split('\n')) {
    const heading = /^== (\S+)(?: (\d+))?$/.exec(line);
    if (heading) {
      current = [];
      sections.set(heading[1]!, current);
      if (heading[1] === 'exit') exit = Number(heading[2]);
      continue;
    }
    if (line !== '') current?.push(line);
  }
  const [mode = '0', uid = '-1', gid = '-1'] = (sections.get('tmp')?.[0] ?? '').split(' ');
  return {
    mounts: (sections.get('mounts') ?? []).map(parseMountInfo),
    tmp: { mode: Number.parseInt(mode, 8), uid: Number(uid), gid: Number(gid) },
    exit,
    leftBehind: sections.get('left-behind') ?? [],
    stillRunning: sections.get('still-running') ?? [],
  };
}

/** A /proc/self/mountinfo line (proc(5)); paths are \ooo-escaped. */
function parseMountInfo(line: string): MountEntry {
  const [fields = '', after = ''] = line.split(' - ');
  const [id = '', parentId = '', , , mountPoint = '', options = ''] = fields.split(' ');
  return { id: Number(id), parentId: Number(parentId), mountPoint: unescapeOctal(mountPoint), options, fsType: after.split(' ')[0] ?? '' };
}

function unescapeOctal(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

/** A mount another one was mounted over, at the same place, cannot be reached: leave it out. */
function visibleMounts(mounts: MountEntry[]): MountEntry[] {
  return mounts.filter((mount) => !mounts.some((other) => other.parentId === mount.id && other.mountPoint === mount.mountPoint));
}

/** Mounts the program could write to. */
export function writableMounts(run: ContainerRun): string[] {
  return run.mounts
    .filter((mount) => mount.options.split(',').includes('rw'))
    .map((mount) => mount.mountPoint)
    .sort();
}

// ---------------------------------------------------------------------------------------------
// strace's log

const OPEN_CALLS = new Set(['open', 'openat', 'openat2']);
/** Calls whose relative paths are relative to a directory argument (which strace -y prints). */
const AT_CALLS = new Set([
  'openat',
  'openat2',
  'mkdirat',
  'mknodat',
  'unlinkat',
  'renameat',
  'renameat2',
  'linkat',
  'symlinkat',
  'fchmodat',
  'fchownat',
  'utimensat',
]);
const WRITE_FLAGS = /O_WRONLY|O_RDWR|O_CREAT|O_TRUNC/;
/** The refusals: the mount is read-only, or the user may not write there. */
const REFUSALS = new Set(['EROFS', 'EACCES', 'EPERM']);

/**
 * The writes the kernel refused, from strace -f -y --failed-only lines such as
 *   1234  openat(AT_FDCWD</app>, "/var/run/postgresql/x", O_RDWR|O_CREAT, 0600) = -1 EROFS (Read-only file system)
 *   1234  bind(3<socket:[99]>, {sa_family=AF_UNIX, sun_path="/var/run/postgresql/.s.PGSQL.5432"}, 110) = -1 EROFS (...)
 * Opens count only when they ask to write. Paths are made absolute with the directory strace
 * prints for the *at calls' directory argument; a relative path of another call keeps its "?/" prefix.
 */
export function parseRefusedWrites(log: string): RefusedWrite[] {
  const refused: RefusedWrite[] = [];
  for (const line of log.split('\n')) {
    const match = /^\s*(?:\[pid\s+)?\d+\]?\s+(\w+)\((.*)\)\s+=\s+-1\s+(E[A-Z0-9]+)\b/.exec(line);
    if (!match) continue;
    const [, syscall = '', args = '', errno = ''] = match;
    if (!REFUSALS.has(errno)) continue;
    if (OPEN_CALLS.has(syscall) && !WRITE_FLAGS.test(args)) continue;
    refused.push({ syscall, paths: pathsOf(syscall, args), errno, line: line.trim() });
  }
  return refused;
}

function pathsOf(syscall: string, args: string): string[] {
  const tokens = [...args.matchAll(/(?:AT_FDCWD|\d+)<([^>]*)>|"((?:[^"\\]|\\.)*)"/g)];
  const paths: string[] = [];
  let directory: string | undefined;
  // symlink(target, linkpath): the target is the link's contents, not a place written.
  let skipFirstString = syscall === 'symlink' || syscall === 'symlinkat';
  for (const token of tokens) {
    if (token[1] !== undefined) {
      directory = token[1];
      continue;
    }
    const name = unescapeC(token[2] ?? '');
    if (skipFirstString) {
      skipFirstString = false;
      continue;
    }
    if (name.startsWith('/')) paths.push(path.posix.normalize(name));
    else if (AT_CALLS.has(syscall) && directory !== undefined) paths.push(path.posix.join(directory, name));
    else paths.push(`?/${name}`);
  }
  if (paths.length === 0 && directory !== undefined) paths.push(directory);
  return paths;
}

function unescapeC(text: string): string {
  return text.replace(/\\(?:([0-7]{1,3})|x([0-9a-fA-F]{2})|(.))/g, (_, octal?: string, hex?: string, other?: string) => {
    if (octal) return String.fromCharCode(Number.parseInt(octal, 8));
    if (hex) return String.fromCharCode(Number.parseInt(hex, 16));
    return ({ n: '\n', t: '\t', r: '\r' } as Record<string, string>)[other ?? ''] ?? other ?? '';
  });
}

function insideTmp(target: string): boolean {
  return target === '/tmp' || target.startsWith('/tmp/');
}

/** The refused writes aimed anywhere but /tmp, one line each. */
export function refusedWritesOutsideTmp(run: ContainerRun): string[] {
  return run.refusedWrites.filter((write) => write.paths.length === 0 || write.paths.some((target) => !insideTmp(target))).map((write) => write.line);
}
