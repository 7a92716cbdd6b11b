/**
 * Where failures go: one encrypted SNS topic per environment with the configured email
 * subscriptions. EventBridge rules (stopped tasks) and CloudWatch alarms publish to it.
 *
 * Both are AWS services publishing on their own behalf, so the topic policy and the key policy
 * must admit them by service principal. `enforceSSL` makes CDK write a topic policy, and a topic
 * policy replaces SNS's default one entirely: whatever is not allowed here cannot publish. Each
 * service statement is confined to this environment's own alarms or rules in this account
 * (confused-deputy protection), by the source conditions AWS documents for each path.
 */
import { ArnFormat, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

export interface AlertingProps {
  environmentName: string;
  emails: readonly string[];
}

/** Every pgkeep alarm and EventBridge rule of an environment is named `pgkeep-<env>-…`. */
export function environmentNamePrefix(environmentName: string): string {
  return `pgkeep-${environmentName}-`;
}

export class Alerting extends Construct {
  readonly topic: sns.Topic;
  /** The topic's key: whoever publishes to the topic needs kms:GenerateDataKey* and kms:Decrypt on it. */
  readonly key: kms.Key;

  constructor(scope: Construct, id: string, props: AlertingProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const prefix = environmentNamePrefix(props.environmentName);
    const fromThisAccount = { StringEquals: { 'aws:SourceAccount': stack.account } };
    const alarmsOfThisEnvironment = stack.formatArn({
      service: 'cloudwatch',
      resource: 'alarm',
      resourceName: `${prefix}*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    const rulesOfThisEnvironment = stack.formatArn({ service: 'events', resource: 'rule', resourceName: `${prefix}*` });

    // A customer-managed key, because the AWS-managed aws/sns key's policy cannot let EventBridge
    // and CloudWatch use it, and then their notifications would be dropped silently.
    const key = new kms.Key(this, 'TopicKey', {
      description: `pgkeep ${props.environmentName}: encrypts the alerts topic`,
      enableKeyRotation: true,
      // The key protects only messages in flight; nothing outlives the topic.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.key = key;
    // "Enable compatibility between event sources from AWS services and encrypted topics"
    // (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services):
    // the source service needs kms:Decrypt and kms:GenerateDataKey* on the topic's key.
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToPublishEncrypted',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { ...fromThisAccount, ArnLike: { 'aws:SourceArn': alarmsOfThisEnvironment } },
      }),
    );
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowEventBridgeRulesToPublishEncrypted',
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        // No source condition: the KMS request EventBridge makes for an encrypted topic carries no
        // aws:SourceArn or aws:SourceAccount (the SNS guide above says so), so such a condition
        // would drop every notification. The topic policy below confines who may publish.
      }),
    );

    this.topic = new sns.Topic(this, 'Topic', {
      displayName: `pgkeep ${props.environmentName} alerts`,
      masterKey: key,
      enforceSSL: true,
    });
    // CloudWatch alarm actions: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html
    // ("Prevent confused deputy security problem": aws:SourceArn of the alarm, aws:SourceAccount).
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowThisEnvironmentsAlarmsToPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: { ...fromThisAccount, ArnLike: { 'aws:SourceArn': alarmsOfThisEnvironment } },
      }),
    );
    // EventBridge rule targets: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sns-permissions
    // (the topic policy admits events.amazonaws.com for the rule's ARN).
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowThisEnvironmentsRulesToPublish',
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: { ...fromThisAccount, ArnLike: { 'aws:SourceArn': rulesOfThisEnvironment } },
      }),
    );
    for (const email of props.emails) this.topic.addSubscription(new subscriptions.EmailSubscription(email));
  }
}

/**
 * An EventBridge rule target that publishes a message to the alerts topic, relying on the topic
 * policy above. CDK's own SnsTopic target would also add an unconditioned statement admitting
 * events.amazonaws.com for every rule in every account, which the conditioned one above replaces.
 */
export class AlertsTopicTarget implements events.IRuleTarget {
  constructor(
    private readonly topic: sns.ITopic,
    private readonly message: events.RuleTargetInput,
  ) {}

  bind(): events.RuleTargetConfig {
    return { arn: this.topic.topicArn, input: this.message, targetResource: this.topic };
  }
}
