/**
 * The S3 servers the scenarios upload to, each in a process of its own so that its CPU time can be
 * told apart from the task's: the local S3 server (dev/local-s3.ts) and a stand-in that discards the bytes.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { S3Client } from '@aws-sdk/client-s3';
import { REPO_ROOT } from '../task-process.ts';

export interface S3ServerProcess {
  pid: number;
  endpoint: string;
  bucket: string;
  env: Record<string, string>;
  client: S3Client;
  stop(): Promise<void>;
}

export async function startS3ServerProcess(): Promise<S3ServerProcess> {
  const localS3Module = pathToFileURL(fileURLToPath(new URL('../local-s3.ts', import.meta.url))).href;
  // The server exits when its stdin closes, so it cannot outlive the benchmark.
  const program = `
    const { startLocalS3 } = await import(${JSON.stringify(localS3Module)});
    const s3 = await startLocalS3();
    process.stdout.write(JSON.stringify({ endpoint: s3.endpoint, bucket: s3.bucket, env: s3.taskEnvironment() }) + '\\n');
    process.stdin.on('end', () => void s3.stop().finally(() => process.exit(0)));
    process.stdin.resume();`;
  return startServerProcess(['--import', 'tsx', '--input-type=module', '-e', program], 'The local S3 server');
}

/**
 * A stand-in for S3 that answers just the requests the backup task makes, counts the bytes and
 * discards them: what pgkeep costs when storing the bytes costs (almost) nothing on this machine.
 * It tells pgkeep's own overhead apart from the local S3 server's; it is no store, and no target
 * is judged against it.
 */
const SINK_SERVER_PROGRAM = `
  import { createServer } from 'node:http';
  const uploads = new Map();
  const objects = new Map();
  let uploadCount = 0;
  const server = createServer((request, response) => {
    let bytes = 0;
    request.on('data', (chunk) => { bytes += chunk.length; });
    request.on('end', () => {
      const url = new URL(request.url, 'http://sink');
      const query = url.searchParams;
      const key = url.pathname;
      const xml = (body) => { response.writeHead(200, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) }); response.end(body); };
      const empty = (status, headers = {}) => { response.writeHead(status, { 'content-length': 0, ...headers }); response.end(); };
      if (request.method === 'POST' && query.has('uploads')) {
        uploadCount += 1;
        uploads.set('u' + uploadCount, 0);
        return xml('<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>pgkeep-sink</Bucket><Key>k</Key><UploadId>u' + uploadCount + '</UploadId></InitiateMultipartUploadResult>');
      }
      if (request.method === 'PUT' && query.has('uploadId')) {
        uploads.set(query.get('uploadId'), (uploads.get(query.get('uploadId')) ?? 0) + bytes);
        return empty(200, { etag: '"part-' + query.get('partNumber') + '"' });
      }
      if (request.method === 'POST' && query.has('uploadId')) {
        objects.set(key, uploads.get(query.get('uploadId')) ?? 0);
        uploads.delete(query.get('uploadId'));
        return xml('<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><Bucket>pgkeep-sink</Bucket><Key>k</Key><ETag>"sink"</ETag></CompleteMultipartUploadResult>');
      }
      if (request.method === 'PUT') { objects.set(key, bytes); return empty(200, { etag: '"sink"' }); }
      if (request.method === 'HEAD') {
        if (!objects.has(key)) return empty(404);
        response.writeHead(200, { 'content-length': objects.get(key), etag: '"sink"', 'last-modified': new Date().toUTCString() });
        return response.end();
      }
      if (request.method === 'DELETE') { uploads.delete(query.get('uploadId')); objects.delete(key); return empty(204); }
      return empty(400);
    });
  });
  server.listen(0, '127.0.0.1', () => {
    const endpoint = 'http://127.0.0.1:' + server.address().port;
    const env = { PGKEEP_BUCKET: 'pgkeep-sink', PGKEEP_S3_ENDPOINT: endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'sink', AWS_SECRET_ACCESS_KEY: 'sink-secret', PGKEEP_METRICS: 'off' };
    process.stdout.write(JSON.stringify({ endpoint, bucket: 'pgkeep-sink', env }) + '\\n');
  });
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();`;

export async function startSinkServerProcess(): Promise<S3ServerProcess> {
  return startServerProcess(['--input-type=module', '-e', SINK_SERVER_PROGRAM], 'The discarding S3 stand-in');
}

async function startServerProcess(nodeArguments: string[], name: string): Promise<S3ServerProcess> {
  const child = spawn(process.execPath, nodeArguments, { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const firstLine = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.once('line', resolve);
    child.once('close', (code) => reject(new Error(`${name} process exited (code ${code}) before it was ready.`)));
  });
  const ready = JSON.parse(firstLine) as { endpoint: string; bucket: string; env: Record<string, string> };
  const { AWS_REGION: region = 'us-east-1', AWS_ACCESS_KEY_ID: accessKeyId = '', AWS_SECRET_ACCESS_KEY: secretAccessKey = '' } = ready.env;
  const client = new S3Client({
    endpoint: ready.endpoint,
    region,
    credentials: { accessKeyId, secretAccessKey },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    pid: child.pid ?? 0,
    endpoint: ready.endpoint,
    bucket: ready.bucket,
    env: ready.env,
    client,
    stop: async () => {
      client.destroy();
      child.stdin?.end();
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
