/**
 * The statements pgkeep's functions share beyond their storage-stack access policies.
 */
import { Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { IConstruct } from 'constructs';
import { METRICS_NAMESPACE } from '../catalog/metrics.ts';

/** PutMetricData has no resource-level permissions; the namespace condition is the limit. Add
 * it with this function so its cdk-nag acknowledgement sits on the same role. */
export function allowPublishingMetrics(role: iam.Role & IConstruct): void {
  role.addToPolicy(
    new iam.PolicyStatement({
      sid: 'PublishBackupMetrics',
      actions: ['cloudwatch:PutMetricData'],
      resources: ['*'],
      conditions: { StringEquals: { 'cloudwatch:namespace': METRICS_NAMESPACE } },
    }),
  );
  Validations.of(role).acknowledge({
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason: 'cloudwatch:PutMetricData has no resource-level permissions; the cloudwatch:namespace condition confines the statement to the pgkeep namespace.',
  });
}
