/**
 * The source region's alarms about the vault. Each goes to the environment's alerts topic; the
 * vault's own alarms (a copy that fails its check) live in the vault stack, with its own topic.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { VAULT_REPLICATED_PREFIXES, vaultBucketName } from '../catalog/vault.ts';
import { notifyBothWays, runbookPointer } from './backup-alarms.ts';
import type { VaultConfig } from './config.ts';
import { replicationRuleId } from './vault-replication.ts';

/**
 * S3 Replication's OperationsFailedReplication (namespace AWS/S3, dimensions SourceBucket,
 * DestinationBucket and RuleId), which S3 publishes in the source bucket's region while the rule's
 * replication metrics are enabled (infra/vault-replication.ts). A failed object is not retried by
 * S3: it stays FAILED until it is replicated again (S3 Batch Replication), so one is an alarm.
 */
export function replicationFailedAlarms(
  scope: Construct,
  environmentName: string,
  vault: VaultConfig,
  sourceBucketName: string,
  topic: sns.ITopic,
): cloudwatch.Alarm[] {
  const destination = vaultBucketName(environmentName, vault.account, vault.region);
  return VAULT_REPLICATED_PREFIXES.map((prefix) => {
    const ruleId = replicationRuleId(prefix);
    return notifyBothWays(
      new cloudwatch.Alarm(scope, `ReplicationFailed${ruleId.replace(/[^A-Za-z0-9]/g, '')}`, {
        alarmName: `pgkeep-${environmentName}-replication-failed-${prefix.replace(/\/$/, '')}`,
        alarmDescription: `pgkeep ${environmentName}: S3 could not replicate objects under ${prefix} into the vault ${destination} (rule ${ruleId}); those backups have no off-site copy, and retention keeps them until they have. ${runbookPointer('replicationFailed')}`,
        metric: new cloudwatch.Metric({
          namespace: 'AWS/S3',
          metricName: 'OperationsFailedReplication',
          dimensionsMap: { SourceBucket: sourceBucketName, DestinationBucket: destination, RuleId: ruleId },
          statistic: cloudwatch.Stats.SUM,
          period: Duration.minutes(5),
        }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        // S3 publishes the metric only while it replicates; no replication is the stale alarm's business.
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      topic,
    );
  });
}
