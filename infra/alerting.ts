/**
 * Where failures go: one encrypted SNS topic per environment with the configured email
 * subscriptions. EventBridge (failed backup tasks) and CloudWatch (alarms) publish to it.
 */
import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

export interface AlertingProps {
  environmentName: string;
  emails: readonly string[];
}

export class Alerting extends Construct {
  readonly topic: sns.Topic;
  /** The topic's key: whoever publishes to the topic needs kms:GenerateDataKey* and kms:Decrypt on it. */
  readonly key: kms.Key;

  constructor(scope: Construct, id: string, props: AlertingProps) {
    super(scope, id);
    const stack = Stack.of(this);

    // A customer-managed key, because the AWS-managed aws/sns key's policy cannot let EventBridge
    // and CloudWatch use it, and then their notifications would be dropped silently.
    const key = new kms.Key(this, 'TopicKey', {
      description: `pgkeep ${props.environmentName}: encrypts the alerts topic`,
      enableKeyRotation: true,
      // The key protects only messages in flight; nothing outlives the topic.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.key = key;
    // EventBridge gets its key permissions from the topic's grantPublish (the rule targets do that);
    // CloudWatch alarm actions get none, so the key lets CloudWatch of this account use it.
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToPublishEncrypted',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
    );

    this.topic = new sns.Topic(this, 'Topic', {
      displayName: `pgkeep ${props.environmentName} alerts`,
      masterKey: key,
      enforceSSL: true,
    });
    for (const email of props.emails) this.topic.addSubscription(new subscriptions.EmailSubscription(email));
  }
}
