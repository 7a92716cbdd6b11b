/**
 * moto_server (moto 5, on PATH) on a free loopback port: a real server for the AWS APIs the local
 * S3 server lacks (CloudWatch, SNS, SQS, KMS, and S3 with versioning, Object Lock and SSE-KMS), so
 * calls that the other suites send to in-memory sinks are sent for real.
 */
import { spawn } from 'node:child_process';

export interface MotoServer {
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Environment that points every AWS SDK client of a process at this server. */
  sdkEnvironment(): Record<string, string>;
  stop(): Promise<void>;
}

const START_DEADLINE_MS = 30_000;
const STOP_DEADLINE_MS = 5_000;

export async function startMotoServer(): Promise<MotoServer> {
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const endpoint = await new Promise<string>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`moto_server did not start within ${START_DEADLINE_MS} ms: ${output}`));
    }, START_DEADLINE_MS);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const match = /Running on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`moto_server could not be started (is moto installed?): ${error.message}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`moto_server exited with ${code} before it listened: ${output}`));
    });
  });
  const region = 'eu-central-1';
  const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
  return {
    endpoint,
    region,
    credentials,
    sdkEnvironment: () => ({
      AWS_ENDPOINT_URL: endpoint,
      AWS_REGION: region,
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    }),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_DEADLINE_MS);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}
