// runtime/: code the task and the functions share that talks to AWS (the SDK), so it cannot live in
// catalog/, which stays pure for the infra to import at synth time. infra/ never imports runtime/.

/** Publishing the metrics catalog/metrics.ts names, to CloudWatch or, locally and in tests, to a list. */
import { CloudWatchClient, PutMetricDataCommand, type MetricDatum, type StandardUnit } from '@aws-sdk/client-cloudwatch';
import { METRICS_NAMESPACE, type MetricName, type MetricScope } from '../catalog/metrics.ts';

export interface MetricValue {
  name: MetricName;
  value: number;
  unit: StandardUnit;
}

export function metricData(scope: MetricScope, values: readonly MetricValue[], timestamp = new Date()): MetricDatum[] {
  return values.map((metric) => ({
    MetricName: metric.name,
    Value: metric.value,
    Unit: metric.unit,
    Timestamp: timestamp,
    Dimensions: [
      { Name: 'Environment', Value: scope.environment },
      { Name: 'Database', Value: scope.database },
    ],
  }));
}

/** Where metrics go: CloudWatch in AWS; in the local run, the run's own report. */
export interface MetricsSink {
  publish(data: readonly MetricDatum[]): Promise<void>;
}

export function cloudWatchSink(client: CloudWatchClient = new CloudWatchClient({}), namespace = METRICS_NAMESPACE): MetricsSink {
  return {
    async publish(data) {
      // PutMetricData takes at most 1,000 values per call.
      for (let start = 0; start < data.length; start += 1000) {
        await client.send(new PutMetricDataCommand({ Namespace: namespace, MetricData: data.slice(start, start + 1000) }));
      }
    },
  };
}

/** Keeps what would have been published, for the local run's report and for tests. */
export function collectingSink(): MetricsSink & { published: MetricDatum[] } {
  const published: MetricDatum[] = [];
  return {
    published,
    async publish(data) {
      published.push(...data);
      return Promise.resolve();
    },
  };
}
