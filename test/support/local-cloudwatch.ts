import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A CloudWatch endpoint on loopback that accepts PutMetricData and records it, for tasks that
 * publish metrics as they do in AWS (AWS_ENDPOINT_URL_CLOUDWATCH points the SDK here). It speaks
 * the protocol the SDK uses for CloudWatch (AWS JSON 1.0, target GraniteServiceVersion20100801.*)
 * and answers every other operation with an error, so a call it does not expect is seen.
 */
export interface RecordedMetric {
  namespace: string;
  name: string;
  value: number;
  dimensions: Record<string, string>;
}

export interface LocalCloudWatch {
  endpoint: string;
  metrics: RecordedMetric[];
  stop(): Promise<void>;
}

const MAX_BODY_BYTES = 1024 * 1024;
/** Each request must arrive whole within this time; nothing waits for a stalled client. */
const REQUEST_TIMEOUT_MS = 10_000;

interface PutMetricDataInput {
  Namespace?: string;
  MetricData?: { MetricName?: string; Value?: number; Dimensions?: { Name?: string; Value?: string }[] }[];
}

export async function startLocalCloudWatch(): Promise<LocalCloudWatch> {
  const metrics: RecordedMetric[] = [];
  const server = createServer({ requestTimeout: REQUEST_TIMEOUT_MS }, (request, response) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    request.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > MAX_BODY_BYTES) request.destroy();
      else chunks.push(chunk);
    });
    request.on('end', () => {
      const target = String(request.headers['x-amz-target'] ?? '');
      response.setHeader('content-type', 'application/x-amz-json-1.0');
      if (target !== 'GraniteServiceVersion20100801.PutMetricData') {
        response.statusCode = 400;
        response.end(
          JSON.stringify({ __type: 'InvalidAction', message: `the local CloudWatch endpoint only records PutMetricData, not ${target || 'this request'}` }),
        );
        return;
      }
      const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as PutMetricDataInput;
      for (const datum of input.MetricData ?? []) {
        metrics.push({
          namespace: input.Namespace ?? '',
          name: datum.MetricName ?? '',
          value: datum.Value ?? Number.NaN,
          dimensions: Object.fromEntries((datum.Dimensions ?? []).map((dimension) => [dimension.Name ?? '', dimension.Value ?? ''])),
        });
      }
      response.end('{}');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    metrics,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
