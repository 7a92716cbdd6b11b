import type { AddressInfo } from 'node:net';
import { S3Client } from '@aws-sdk/client-s3';
import { buildApp } from 'fauxqs';

/**
 * A real S3-protocol server on loopback, for the local run, the benchmark and the tests.
 *
 * fauxqs (in memory) rather than s3rver: it implements AbortMultipartUpload (s3rver answers 405),
 * ListObjectsV2 and multipart ETags. It accepts request bodies up to 11 MiB, which bounds the part
 * sizes usable against it (pgkeep starts at 8 MiB). It stores no checksums, versions or encryption,
 * and answers ListMultipartUploads with an object listing; the suites that depend on those run
 * against moto_server (test/support/moto-s3.ts, docs/testing.md).
 *
 * Object tagging is added here. fauxqs does not implement it, and worse, it treats
 * `PUT ?tagging` as a plain object write: a verification tag would overwrite the backup with the
 * tagging XML (seen in testing). pgkeep records verification outcomes and retention tiers as tags,
 * so this layer gives tags S3's semantics: Get/Put/DeleteObjectTagging on existing objects, at
 * most 10 tags, and tags that live and die with the object (a new PUT, a completed multipart
 * upload or a delete replaces them; `x-amz-tagging` on PUT sets them).
 */
export interface LocalS3 {
  endpoint: string;
  bucket: string;
  region: string;
  /** Credentials the server accepts (it checks none; the SDK needs some to sign). */
  credentials: { accessKeyId: string; secretAccessKey: string };
  client(): S3Client;
  /** Environment for a process (the backup task) that should use this server. */
  taskEnvironment(): Record<string, string>;
  stop(): Promise<void>;
}

type Tags = Map<string, string>;

const S3_XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';
const MAX_TAGS = 10;

export async function startLocalS3(options: { bucket?: string; port?: number } = {}): Promise<LocalS3> {
  const bucket = options.bucket ?? 'pgkeep-local';
  const app = buildApp({ logger: false });
  const tagsByObject = new Map<string, Tags>();
  const objectId = (bucketName: string, key: string): string => `${bucketName}/${key}`;

  app.addHook('preHandler', async (request, reply) => {
    const query = request.query as Record<string, string | undefined>;
    const params = request.params as { bucket?: string; '*'?: string };
    if (!('tagging' in query) || !params.bucket || !params['*']) return;
    const id = objectId(params.bucket, params['*']);
    const exists = await app.inject({ method: 'HEAD', url: `/${params.bucket}/${encodeKey(params['*'])}` });
    if (exists.statusCode !== 200) {
      return reply.code(404).type('application/xml').send(errorXml('NoSuchKey', 'The specified key does not exist.'));
    }
    if (request.method === 'GET') {
      return reply.type('application/xml').send(taggingXml(tagsByObject.get(id) ?? new Map<string, string>()));
    }
    if (request.method === 'DELETE') {
      tagsByObject.delete(id);
      return reply.code(204).send();
    }
    if (request.method === 'PUT') {
      const parsed = parseTaggingXml(bodyText(request.body));
      if (typeof parsed === 'string') return reply.code(400).type('application/xml').send(errorXml('InvalidTag', parsed));
      tagsByObject.set(id, parsed);
      return reply.code(200).send();
    }
    return reply.code(405).send();
  });

  // Tags belong to an object version: whatever replaces or deletes the object replaces its tags.
  app.addHook('onResponse', async (request, reply) => {
    if (reply.statusCode >= 300) return;
    const query = request.query as Record<string, string | undefined>;
    const params = request.params as { bucket?: string; '*'?: string };
    if (!params.bucket || 'tagging' in query) return;
    if (request.method === 'POST' && 'delete' in query) {
      const body = bodyText(request.body);
      for (const match of body.matchAll(/<Key>([\s\S]*?)<\/Key>/g)) tagsByObject.delete(objectId(params.bucket, unescapeXml(match[1] ?? '')));
      return;
    }
    const key = params['*'];
    if (!key) return;
    const id = objectId(params.bucket, key);
    const replacesObject = (request.method === 'PUT' && !('partNumber' in query)) || (request.method === 'POST' && 'uploadId' in query);
    if (request.method === 'DELETE' && !('uploadId' in query)) tagsByObject.delete(id);
    if (replacesObject) {
      const header = request.headers['x-amz-tagging'];
      const fromHeader = typeof header === 'string' ? new Map(new URLSearchParams(header)) : undefined;
      if (fromHeader && fromHeader.size > 0) tagsByObject.set(id, fromHeader);
      else tagsByObject.delete(id);
    }
  });

  await app.listen({ port: options.port ?? 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  const created = await app.inject({ method: 'PUT', url: `/${bucket}` });
  if (created.statusCode >= 300) throw new Error(`the local S3 server could not create bucket ${bucket}: ${created.body}`);

  const region = 'us-east-1';
  const credentials = { accessKeyId: 'local', secretAccessKey: 'local-secret' };
  const endpoint = `http://127.0.0.1:${port}`;
  let stopped = false;
  return {
    endpoint,
    bucket,
    region,
    credentials,
    client: () =>
      new S3Client({
        endpoint,
        region,
        credentials,
        forcePathStyle: true,
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      }),
    taskEnvironment: () => localTaskEnvironment({ bucket, endpoint, region, credentials }),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await app.close();
    },
  };
}

/** The environment of a task process that should use a local S3-protocol server. */
export function localTaskEnvironment(server: Pick<LocalS3, 'bucket' | 'endpoint' | 'region' | 'credentials'>): Record<string, string> {
  return {
    PGKEEP_BUCKET: server.bucket,
    PGKEEP_S3_ENDPOINT: server.endpoint,
    AWS_REGION: server.region,
    AWS_ACCESS_KEY_ID: server.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: server.credentials.secretAccessKey,
    // There is no CloudWatch here, and nothing in a local run may leave loopback.
    PGKEEP_METRICS: 'off',
  };
}

function bodyText(body: unknown): string {
  if (Buffer.isBuffer(body)) return body.toString('utf8');
  return typeof body === 'string' ? body : '';
}

function parseTaggingXml(xml: string): Tags | string {
  const tags: Tags = new Map();
  for (const match of xml.matchAll(/<Tag>\s*<Key>([\s\S]*?)<\/Key>\s*<Value>([\s\S]*?)<\/Value>\s*<\/Tag>/g)) {
    const key = unescapeXml(match[1] ?? '');
    const value = unescapeXml(match[2] ?? '');
    if (key.length === 0 || key.length > 128 || value.length > 256) return `Tag ${key} has an invalid key or value length.`;
    if (tags.has(key)) return `Tag key ${key} appears twice.`;
    tags.set(key, value);
  }
  if (tags.size > MAX_TAGS) return `Object tags cannot be greater than ${MAX_TAGS}.`;
  return tags;
}

function taggingXml(tags: Tags): string {
  const entries = [...tags].map(([key, value]) => `<Tag><Key>${escapeXml(key)}</Key><Value>${escapeXml(value)}</Value></Tag>`).join('');
  return `<?xml version="1.0" encoding="UTF-8"?><Tagging xmlns="${S3_XMLNS}"><TagSet>${entries}</TagSet></Tagging>`;
}

function errorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${escapeXml(message)}</Message></Error>`;
}

function encodeKey(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

function escapeXml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&apos;');
}

function unescapeXml(text: string): string {
  return text.replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&quot;', '"').replaceAll('&apos;', "'").replaceAll('&amp;', '&');
}
