/**
 * Records every AWS call a pgkeep component really sends, for the authorization model
 * (test/infra/authz-model.test.ts), which checks each one against the deployed IAM policies.
 *
 * A smithy middleware on the client's stack sees each command once (before the retry loop) with
 * its input, the HTTP request it was serialized to and its outcome, and appends one JSON line per
 * call to `<recordings>/<component>.<pid>.jsonl`. Synchronously: the task ends with process.exit,
 * which would drop a pending asynchronous write.
 *
 * Two ways in, both off unless PGKEEP_AWS_CALL_RECORDINGS names a directory (vitest.config.ts
 * creates a fresh one per run):
 * - in-process (the functions' integration tests): `recordAwsCalls(component, client)` on the
 *   client the test injects into the domain function, so the test's own set-up calls are not
 *   attributed to the component;
 * - in a child process (the task run by startTask, the Lambda-like runner): the `--import` preload
 *   test/support/aws-call-recorder-preload.ts installs it on every SDK client the process creates,
 *   under the component named by PGKEEP_AWS_CALL_COMPONENT.
 */
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const RECORDINGS_ENV = 'PGKEEP_AWS_CALL_RECORDINGS';
export const COMPONENT_ENV = 'PGKEEP_AWS_CALL_COMPONENT';

/** Every runtime component that sends AWS calls, as the deployed system names them. */
export const COMPONENTS = ['backup', 'restore', 'drill', 'verify-backup', 'backup-health', 'enforce-retention'] as const;
export type Component = (typeof COMPONENTS)[number];

export function isComponent(name: string): name is Component {
  return (COMPONENTS as readonly string[]).includes(name);
}

export interface RecordedCall {
  component: Component;
  /** e.g. S3Client, CloudWatchClient, SNSClient. */
  client: string;
  /** e.g. HeadObjectCommand. */
  command: string;
  /** The input's scalar fields (Bucket, Key, VersionId, Prefix, Namespace, TopicArn, …) and a few
   * derived ones (deleteKeys, metricCount); never a body, a message or tag values. */
  input: Record<string, string | number | boolean | string[]>;
  /** Where the request went in the test (the deployed endpoint is derived by the model). */
  request: { protocol: string; hostname: string } | undefined;
  outcome: { status?: number; error?: string };
  /** The pgkeep settings (PGKEEP_*) of the process that sent it; absent for in-process calls, whose
   * settings the test passed as arguments. The model uses them to tell which deployments make the call. */
  settings?: Record<string, string>;
}

/** Input fields that are bulky or carry content rather than addressing. */
const OMITTED_INPUT_FIELDS = new Set([
  'Body',
  'Message',
  'MessageAttributes',
  'Tagging',
  'MultipartUpload',
  'Delete',
  'MetricData',
  'RestoreRequest',
  'ContentMD5',
]);

export function summarizeInput(input: unknown): RecordedCall['input'] {
  const summary: RecordedCall['input'] = {};
  if (!input || typeof input !== 'object') return summary;
  for (const [name, value] of Object.entries(input as Record<string, unknown>)) {
    if (OMITTED_INPUT_FIELDS.has(name)) continue;
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') summary[name] = value;
  }
  const {
    Delete: deletion,
    MetricData: metricData,
    RestoreRequest: restoreRequest,
  } = input as { Delete?: { Objects?: { Key?: string }[] }; MetricData?: unknown[]; RestoreRequest?: { GlacierJobParameters?: { Tier?: string } } };
  // DeleteObjects is authorized per key (s3:DeleteObject on each).
  if (deletion?.Objects) summary.deleteKeys = deletion.Objects.map((object) => object.Key ?? '');
  if (Array.isArray(metricData)) summary.metricCount = metricData.length;
  if (restoreRequest?.GlacierJobParameters?.Tier) summary.restoreTier = restoreRequest.GlacierJobParameters.Tier;
  return summary;
}

interface MiddlewareStackLike {
  add(middleware: unknown, options: Record<string, unknown>): void;
}

const REQUEST_KEY = Symbol('pgkeep recorded request');

/** Writes to `<directory>/<component>.<pid>.jsonl`, one line per call. */
export function callWriter(directory: string, component: Component, settings?: Record<string, string>): (call: RecordedCall) => void {
  const file = join(directory, `${component}.${process.pid}.jsonl`);
  return (call) => appendFileSync(file, `${JSON.stringify(settings ? { ...call, settings } : call)}\n`);
}

/** A process's pgkeep settings, without the one that can hold a password and without the recorder's own. */
export function pgkeepSettings(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter(
      (entry): entry is [string, string] =>
        entry[0].startsWith('PGKEEP_') && entry[0] !== 'PGKEEP_DATABASE_URL' && !entry[0].startsWith('PGKEEP_AWS_CALL_') && entry[1] !== undefined,
    ),
  );
}

export function addRecordingMiddleware(stack: MiddlewareStackLike, component: Component, write: (call: RecordedCall) => void): void {
  // Build step: runs once per command, after serialization, before the retry loop (finalize step).
  stack.add(
    (next: (args: { request?: unknown }) => Promise<unknown>, context: Record<PropertyKey, unknown>) => (args: { request?: unknown }) => {
      const request = args.request as { protocol?: string; hostname?: string } | undefined;
      if (request?.hostname) context[REQUEST_KEY] = { protocol: request.protocol ?? '', hostname: request.hostname };
      return next(args);
    },
    { step: 'build', priority: 'low', name: 'pgkeepRecordRequest', override: true },
  );
  stack.add(
    (next: (args: { input: unknown }) => Promise<{ output?: { $metadata?: { httpStatusCode?: number } } }>, context: Record<PropertyKey, unknown>) =>
      async (args: { input: unknown }) => {
        const call = (outcome: RecordedCall['outcome']): RecordedCall => ({
          component,
          client: typeof context.clientName === 'string' ? context.clientName : 'unknown',
          command: typeof context.commandName === 'string' ? context.commandName : 'unknown',
          input: summarizeInput(args.input),
          request: context[REQUEST_KEY] as RecordedCall['request'],
          outcome,
        });
        try {
          const result = await next(args);
          write(call({ status: result.output?.$metadata?.httpStatusCode ?? 200 }));
          return result;
        } catch (error) {
          const failure = error as { name?: string; $metadata?: { httpStatusCode?: number } };
          write(call({ error: failure.name ?? 'Error', ...(failure.$metadata?.httpStatusCode ? { status: failure.$metadata.httpStatusCode } : {}) }));
          throw error;
        }
      },
    { step: 'initialize', priority: 'high', name: 'pgkeepRecordCall', override: true },
  );
}

/**
 * Labels `client`'s calls as `component`'s when this run records calls; returns the client, so a
 * test writes `s3: recordAwsCalls('verify-backup', localS3.client())`. `settings`: the deployed
 * settings the test's arguments stand for where they switch calls on (an in-process retention run
 * with `objectLock: true` is PGKEEP_OBJECT_LOCK=true), so the model applies its calls only to
 * deployments with those settings.
 */
export function recordAwsCalls<T extends { middlewareStack: MiddlewareStackLike }>(
  component: Component,
  client: T,
  options: { settings?: Record<string, string>; env?: NodeJS.ProcessEnv } = {},
): T {
  const directory = (options.env ?? process.env)[RECORDINGS_ENV];
  if (directory) addRecordingMiddleware(client.middlewareStack, component, callWriter(directory, component, options.settings));
  return client;
}

/** The environment a child process needs to record its calls as `component`; empty when this run does not record. */
export function recordingEnvironment(component: Component, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const directory = env[RECORDINGS_ENV];
  return directory ? { [RECORDINGS_ENV]: directory, [COMPONENT_ENV]: component } : {};
}

export const RECORDER_PRELOAD = new URL('./aws-call-recorder-preload.ts', import.meta.url).pathname;

/** Every call recorded into `directory` (one JSON line each, in any number of files). */
export function readRecordedCalls(directory: string): RecordedCall[] {
  return readdirSync(directory)
    .filter((file) => file.endsWith('.jsonl'))
    .sort()
    .flatMap((file) =>
      readFileSync(join(directory, file), 'utf8')
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as RecordedCall),
    );
}
