/**
 * The checks the authorization model makes, all derived from the synthesized templates and the
 * recorded calls, none from a hand-written list of resources:
 * (a) runtime: every AWS call a component really sent, as IAM requests of its deployed role;
 * (b) service: every service-to-service path the templates declare (alarm and rule actions, the S3
 *     notification, schedules, what ECS does with an execution role, Lambda and log delivery, the
 *     roles' trust policies);
 * and negatives: each deny a policy has for a reason, and the least-privilege promises.
 */
import type { Component, RecordedCall } from '../aws-call-recorder.ts';
import { callPermissions, type IamRequest, type RequestContext } from './call-permissions.ts';
import type { Check } from './evaluate.ts';
import { asList, type ComponentInstance, type Deployment, type NamedPolicy, type Role } from './deployment.ts';
import { text, type JsonObject } from './cloud-assembly.ts';

const secure: RequestContext = { 'aws:SecureTransport': 'true' };

const accountOfRole = (role: Role): string => role.arn.split(':')[4]!;

function sessionOf(role: Role, session: string): string {
  return `arn:aws:sts::${accountOfRole(role)}:assumed-role/${role.name}/${session}`;
}

/** A check made as `role` (a session of it), with the context keys AWS adds for every such request. */
function asRole(
  deployment: Deployment,
  role: Role,
  session: string,
  request: Omit<Check, 'principal' | 'identity' | 'resourcePolicy' | 'id' | 'resourceAccount'> & { resourcePolicy?: NamedPolicy | undefined; label: string },
): Check {
  const { label, ...rest } = request;
  return {
    ...rest,
    id: `${label}: ${request.action} on ${request.resource}${request.expect === 'denied' ? ' is denied' : ''}`,
    principal: sessionOf(role, session),
    identity: role.identity,
    resourcePolicy: request.resourcePolicy ?? deployment.resourcePolicy(request.resource),
    resourceAccount: deployment.accountOf(request.resource, accountOfRole(role)),
    context: { 'aws:PrincipalArn': role.arn, 'aws:PrincipalAccount': accountOfRole(role), ...request.context },
  };
}

function asService(
  deployment: Deployment,
  service: string,
  request: {
    label: string;
    action: string;
    resource: string;
    context: RequestContext;
    resourcePolicy?: NamedPolicy | undefined;
    because: string[];
    expect?: 'allowed' | 'denied';
  },
): Check {
  const expect = request.expect ?? 'allowed';
  return {
    id: `${request.label}: ${service} ${request.action} on ${request.resource}${expect === 'denied' ? ' is denied' : ''}`,
    family: expect === 'denied' ? 'negative' : 'service',
    principal: service,
    action: request.action,
    resource: request.resource,
    context: request.context,
    identity: [],
    resourcePolicy: request.resourcePolicy ?? deployment.resourcePolicy(request.resource),
    resourceAccount: deployment.accountOf(request.resource),
    expect,
    because: request.because,
  };
}

export interface RuntimePermission {
  component: Component;
  request: IamRequest;
}

/**
 * Settings that switch a component's calls on: a call recorded with one of them set says nothing
 * about a deployment with another value (enforce-retention reads Object Lock dates only with
 * PGKEEP_OBJECT_LOCK=true, tags and deletes only without a dry run). Unset, they have the
 * handler's default. Every other setting, and these for other components, changes what is sent,
 * not which calls: the tasks send the same calls under Object Lock, only with checksums on.
 */
const CALL_SWITCHES: Readonly<Partial<Record<Component, Readonly<Record<string, string>>>>> = {
  'enforce-retention': { PGKEEP_OBJECT_LOCK: 'false', PGKEEP_RETENTION_DRY_RUN: 'false' },
};

/**
 * Settings that say which deployed instance sent a call at all, with the handler's default: a call
 * recorded without one was made with the default. verify-backup runs twice with a vault, as the
 * primary's verifier and as the vault's (PGKEEP_VERIFY_SITE=vault, in the vault's account and
 * region); a call of the primary's is no evidence for the vault's, whose role the service-path
 * checks cover when no test records it.
 */
const CALL_SITES: Readonly<Partial<Record<Component, Readonly<Record<string, string>>>>> = {
  'verify-backup': { PGKEEP_VERIFY_SITE: 'primary' },
};

function madeBy(call: RecordedCall, instance: ComponentInstance): boolean {
  return (
    Object.entries(CALL_SWITCHES[call.component] ?? {}).every(
      ([name, fallback]) => call.settings?.[name] === undefined || call.settings[name] === (instance.settings[name] ?? fallback),
    ) &&
    Object.entries(CALL_SITES[call.component] ?? {}).every(([name, fallback]) => (call.settings?.[name] ?? fallback) === (instance.settings[name] ?? fallback))
  );
}

/** (a) Every recorded call of every component, for each deployed instance of that component. */
export function runtimeChecks(deployment: Deployment, calls: readonly RecordedCall[]): { checks: Check[]; permissions: RuntimePermission[] } {
  const checks = new Map<string, Check>();
  const permissions: RuntimePermission[] = [];
  for (const call of calls) {
    const instances = deployment.components.filter((instance) => instance.component === call.component && madeBy(call, instance));
    if (!deployment.components.some((instance) => instance.component === call.component))
      throw new Error(`component ${call.component} sent ${call.command} in the tests but is not deployed: no task definition runs it and no function is it`);
    for (const instance of instances) {
      const role = deployment.role(instance.roleArn);
      for (const request of callPermissions(call, instance, deployment)) {
        permissions.push({ component: call.component, request });
        const context = request.onBehalfBy ? { ...request.context, 'aws:ViaAWSService': 'true' } : request.context;
        const check = asRole(deployment, role, call.component, {
          label: `${call.component} (${instance.name})`,
          family: 'runtime',
          action: request.action,
          resource: request.resource,
          context,
          expect: 'allowed',
          because: [request.because],
        });
        const key = JSON.stringify([check.principal, check.action, check.resource, check.context]);
        const existing = checks.get(key);
        if (existing) {
          if (!existing.because.includes(request.because)) existing.because.push(request.because);
        } else checks.set(key, check);
      }
    }
  }
  return { checks: [...checks.values()], permissions };
}

/** The AWS-managed default key policy, for customer-managed keys that are not in the templates
 * (a database secret's key): it lets the account's IAM policies decide. An assumption, said as such. */
function defaultKeyPolicy(account: string, keyArn: string): NamedPolicy {
  return {
    id: `${keyArn} (not in the templates: the default key policy is assumed)`,
    kind: 'resource',
    ours: false,
    document: {
      Version: '2012-10-17',
      Statement: [{ Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'kms:*', Resource: '*' }],
    },
  };
}

export interface ServicePathOptions {
  /** The customer-managed key a database secret is encrypted with, where the configuration names one. */
  secretKmsKey(secretArn: string): string | undefined;
  /** Stacks of the app around pgkeep (examples/: its VPC and database): their resources are read
   * where pgkeep's refer to them, but what they do themselves is the app's, not modelled here. */
  applicationStacks?: readonly string[];
}

/** (b) The service-to-service paths the templates declare. */
export function serviceChecks(deployment: Deployment, options: ServicePathOptions): Check[] {
  const { assembly } = deployment;
  const checks: Check[] = [];
  const usage = new Map<string, { service: string; context: RequestContext; label: string }[]>();
  const uses = (roleArn: string, service: string, context: RequestContext, label: string) =>
    usage.set(roleArn, [...(usage.get(roleArn) ?? []), { service, context, label }]);
  // Each service request is made in the account and region of the resource that causes it.
  const sourceAccount = (site: { account: string }) => ({ 'aws:SourceAccount': site.account });

  // Publishing to an SNS topic as a service, and the topic key's use on its behalf.
  const publishAsService = (service: string, topicArn: string, sourceArn: string, label: string, kmsContext: RequestContext) => {
    checks.push(
      asService(deployment, service, {
        label,
        action: 'sns:Publish',
        resource: topicArn,
        context: { ...secure, 'aws:SourceAccount': deployment.accountOf(sourceArn), 'aws:SourceArn': sourceArn },
        because: [label],
      }),
    );
    const key = deployment.topicKeys.get(topicArn);
    if (!key) return;
    for (const action of ['kms:GenerateDataKey', 'kms:Decrypt']) {
      checks.push(
        asService(deployment, service, {
          label: `${label} (encrypted topic)`,
          action,
          resource: key,
          context: { ...secure, ...kmsContext },
          because: [`${label}: SNS encrypts the message with the topic's key on the publisher's behalf`],
        }),
      );
    }
  };

  // CloudWatch alarm actions. "Enable compatibility between event sources from AWS services and
  // encrypted topics" (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services):
  // the topic policy must let cloudwatch.amazonaws.com publish and the key policy let it use the key;
  // CloudWatch sends aws:SourceArn (the alarm) and aws:SourceAccount
  // (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-confused-deputy.html).
  for (const alarm of [...assembly.resources('AWS::CloudWatch::Alarm'), ...assembly.resources('AWS::CloudWatch::CompositeAlarm')]) {
    const alarmArn = assembly.reference(alarm.stack, alarm.logicalId, 'Arn');
    const actions = new Set(
      ['AlarmActions', 'OKActions', 'InsufficientDataActions'].flatMap((property) => asList(alarm.properties[property]).map((value) => text(value))),
    );
    for (const action of actions) {
      if (!action.startsWith('arn:aws:sns:')) throw new Error(`alarm ${alarmArn} has an action the model does not know: ${action}`);
      publishAsService('cloudwatch.amazonaws.com', action, alarmArn, `alarm ${text(alarm.properties.AlarmName)}`, {
        ...sourceAccount(alarm.stack),
        'aws:SourceArn': alarmArn,
      });
    }
  }

  // EventBridge rule targets. An SNS target without a role is published by events.amazonaws.com
  // under the topic policy, with aws:SourceArn = the rule
  // (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sns-permissions);
  // its KMS requests carry no aws:SourceArn or aws:SourceAccount (the SNS compatibility page above).
  for (const rule of assembly.resources('AWS::Events::Rule')) {
    const ruleArn = assembly.reference(rule.stack, rule.logicalId, 'Arn');
    for (const target of asList(rule.properties.Targets) as JsonObject[]) {
      const arn = text(target.Arn);
      if (target.RoleArn) throw new Error(`rule ${ruleArn} targets ${arn} with a role: model that path (events.amazonaws.com assumes the role)`);
      if (!arn.startsWith('arn:aws:sns:')) throw new Error(`rule ${ruleArn} has a target the model does not know: ${arn}`);
      publishAsService('events.amazonaws.com', arn, ruleArn, `rule ${ruleArn.split('/').at(-1)}`, {});
    }
  }

  // S3 event notifications: s3.amazonaws.com invokes the function under its resource policy, with
  // aws:SourceArn = the bucket and aws:SourceAccount
  // (https://docs.aws.amazon.com/AmazonS3/latest/userguide/grant-destinations-permissions-to-s3.html).
  // CDK writes the configuration with a custom resource whose handler reads and writes the bucket's
  // notification configuration (GetBucketNotification, PutBucketNotification) as its own role.
  for (const notification of assembly.resources('Custom::S3BucketNotifications')) {
    const bucket = deployment.bucket(text(notification.properties.BucketName));
    const configuration = (notification.properties.NotificationConfiguration ?? {}) as Record<string, JsonObject[] | undefined>;
    for (const [kind, entries] of Object.entries(configuration)) {
      if (kind !== 'LambdaFunctionConfigurations' && (entries ?? []).length > 0)
        throw new Error(`bucket ${bucket.name} notifies ${kind}, which the model does not know`);
    }
    for (const entry of configuration.LambdaFunctionConfigurations ?? []) {
      const functionArn = deployment.functionArn(text(entry.LambdaFunctionArn), notification.stack);
      checks.push(
        asService(deployment, 's3.amazonaws.com', {
          label: `notification of bucket ${bucket.name}`,
          action: 'lambda:InvokeFunction',
          resource: functionArn,
          context: { ...secure, ...sourceAccount(bucket), 'aws:SourceArn': bucket.arn },
          because: ['S3 event notification'],
        }),
      );
    }
    const handler = assembly
      .resources('AWS::Lambda::Function')
      .find((fn) => assembly.reference(fn.stack, fn.logicalId, 'Arn') === text(notification.properties.ServiceToken));
    if (!handler) throw new Error(`the notification custom resource's handler ${text(notification.properties.ServiceToken)} is not in the assembly`);
    const handlerRole = deployment.role(text(handler.properties.Role));
    // Managed (the bucket is in the handler's own stack): the handler writes the configuration as
    // given; unmanaged (an imported bucket): it first reads the bucket's to keep what others added
    // (aws-cdk-lib's notifications-resource-handler, handle_managed and handle_unmanaged).
    const managed = notification.properties.Managed === true || notification.properties.Managed === 'true';
    for (const action of [...(managed ? [] : ['s3:GetBucketNotification']), 's3:PutBucketNotification']) {
      checks.push(
        asRole(deployment, handlerRole, 'cloudformation', {
          label: `CDK's notification handler (deploy time)`,
          family: 'service',
          action,
          resource: bucket.arn,
          context: { ...secure, 's3:TlsVersion': '1.2' },
          expect: 'allowed',
          because: [
            managed
              ? 'Custom::S3BucketNotifications (Managed) writes the configuration'
              : "Custom::S3BucketNotifications merges its configuration into the bucket's",
          ],
        }),
      );
    }
  }
  const ownStacks = assembly.stacks.filter((stack) => !(options.applicationStacks ?? []).includes(stack.stackName));
  for (const custom of ownStacks.flatMap((stack) =>
    Object.entries(stack.template.Resources ?? {}).filter(
      ([, resource]) => resource.Type.startsWith('Custom::') && resource.Type !== 'Custom::S3BucketNotifications',
    ),
  )) {
    throw new Error(`custom resource ${custom[0]} (${custom[1].Type}) is not modelled: what does its handler do, as which role?`);
  }

  // EventBridge Scheduler: it assumes the schedule's role (aws:SourceArn = the schedule group,
  // https://docs.aws.amazon.com/scheduler/latest/UserGuide/setting-up.html#setting-up-execution-role)
  // and calls the target with it: ecs:RunTask of the task definition in the cluster and iam:PassRole
  // of both the task role and the execution role to ECS
  // (https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-targets-templated.html), or
  // lambda:InvokeFunction; the same role sends dead-letter events to the queue
  // (https://docs.aws.amazon.com/scheduler/latest/UserGuide/configuring-schedule-dlq.html).
  const taskDefinitions = new Map(
    assembly.resources('AWS::ECS::TaskDefinition').map((definition) => [assembly.reference(definition.stack, definition.logicalId), definition]),
  );
  for (const schedule of assembly.resources('AWS::Scheduler::Schedule')) {
    const target = schedule.properties.Target as JsonObject;
    const role = deployment.role(text(target.RoleArn));
    const group = text(schedule.properties.GroupName ?? 'default');
    const label = `schedule ${group}/${text(schedule.properties.Name)}`;
    const { account, region } = schedule.stack;
    uses(
      role.arn,
      'scheduler.amazonaws.com',
      { ...sourceAccount(schedule.stack), 'aws:SourceArn': `arn:aws:scheduler:${region}:${account}:schedule-group/${group}` },
      label,
    );
    const as = (action: string, resource: string, context: RequestContext, because: string) =>
      checks.push(
        asRole(deployment, role, 'scheduler', {
          label,
          family: 'service',
          action,
          resource,
          context: { ...secure, ...context },
          expect: 'allowed',
          because: [because],
        }),
      );
    const targetArn = text(target.Arn);
    if (target.EcsParameters) {
      const ecs = target.EcsParameters as JsonObject;
      const definitionArn = text(ecs.TaskDefinitionArn);
      const definition = taskDefinitions.get(definitionArn);
      if (!definition) throw new Error(`${label} runs ${definitionArn}, which is not in the assembly`);
      as('ecs:RunTask', definitionArn, { 'ecs:cluster': targetArn }, 'the schedule starts the task');
      for (const passed of [definition.properties.TaskRoleArn, definition.properties.ExecutionRoleArn]) {
        if (typeof passed === 'string') as('iam:PassRole', passed, { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' }, 'RunTask hands the task its roles');
      }
    } else if (targetArn.startsWith('arn:aws:lambda:')) {
      as('lambda:InvokeFunction', targetArn, {}, 'the schedule invokes the function');
    } else {
      throw new Error(`${label} has a target the model does not know: ${targetArn}`);
    }
    const deadLetter = (target.DeadLetterConfig as JsonObject | undefined)?.Arn;
    if (typeof deadLetter === 'string') as('sqs:SendMessage', deadLetter, {}, 'undeliverable runs go to the dead-letter queue');
  }

  // ECS with a task definition: the execution role pulls the image from ECR, writes the awslogs
  // streams and reads the secrets (the exact valueFrom ARN, without the JSON-key suffix, and the
  // secret's customer-managed key through Secrets Manager); the task role is what the container runs as
  // (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_execution_IAM_role.html,
  // https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html).
  for (const definition of taskDefinitions.values()) {
    const family = text(definition.properties.Family);
    const { account, region } = definition.stack;
    const taskArn = `arn:aws:ecs:${region}:${account}:task/${family}/0123456789abcdef0123456789abcdef`;
    if (typeof definition.properties.TaskRoleArn === 'string')
      uses(
        definition.properties.TaskRoleArn,
        'ecs-tasks.amazonaws.com',
        { ...sourceAccount(definition.stack), 'aws:SourceArn': taskArn },
        `task role of ${family}`,
      );
    const executionRoleArn = definition.properties.ExecutionRoleArn;
    if (typeof executionRoleArn !== 'string') continue;
    const role = deployment.role(executionRoleArn);
    uses(role.arn, 'ecs-tasks.amazonaws.com', { ...sourceAccount(definition.stack), 'aws:SourceArn': taskArn }, `execution role of ${family}`);
    const as = (action: string, resource: string, context: RequestContext, because: string, resourcePolicy?: NamedPolicy) =>
      checks.push(
        asRole(deployment, role, 'ecs-agent', {
          label: `ECS starting ${family}`,
          family: 'service',
          action,
          resource,
          context: { ...secure, ...context },
          expect: 'allowed',
          because: [because],
          resourcePolicy,
        }),
      );
    for (const container of asList(definition.properties.ContainerDefinitions) as JsonObject[]) {
      const image = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com\/([^:@]+)/.exec(text(container.Image));
      if (image) {
        as('ecr:GetAuthorizationToken', '*', {}, `pull ${text(container.Image)}`);
        for (const action of ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage'])
          as(action, `arn:aws:ecr:${image[2]}:${image[1]}:repository/${image[3]}`, {}, `pull ${text(container.Image)}`);
      }
      const logging = container.LogConfiguration as { LogDriver?: string; Options?: Record<string, string> } | undefined;
      if (logging?.LogDriver === 'awslogs' && logging.Options) {
        const stream = `arn:aws:logs:${logging.Options['awslogs-region'] ?? region}:${account}:log-group:${logging.Options['awslogs-group']}:log-stream:${logging.Options['awslogs-stream-prefix']}/${text(container.Name)}/0123456789abcdef0123456789abcdef`;
        for (const action of ['logs:CreateLogStream', 'logs:PutLogEvents']) as(action, stream, {}, 'the awslogs driver');
      }
      for (const secret of asList(container.Secrets) as JsonObject[]) {
        const valueFrom = text(secret.ValueFrom);
        if (!valueFrom.startsWith('arn:aws:secretsmanager:')) throw new Error(`${family} reads ${valueFrom}: only Secrets Manager secrets are modelled`);
        // arn:aws:secretsmanager:<region>:<account>:secret:<name or name-suffix>[:<json key>:<stage>:<version>]
        const secretArn = valueFrom.split(':').slice(0, 7).join(':');
        as('secretsmanager:GetSecretValue', secretArn, {}, `secret ${text(secret.Name)} (valueFrom ${valueFrom})`);
        const key = options.secretKmsKey(secretArn);
        if (key)
          as(
            'kms:Decrypt',
            key,
            {
              'kms:ViaService': `secretsmanager.${region}.amazonaws.com`,
              'kms:CallerAccount': account,
              'kms:EncryptionContext:SecretARN': secretArn,
              'aws:ViaAWSService': 'true',
            },
            `the secret's customer-managed key (${text(secret.Name)})`,
            deployment.resourcePolicy(key) ?? defaultKeyPolicy(account, key),
          );
      }
    }
  }

  // Lambda assumes each function's role and the function writes its log group
  // (https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html).
  for (const fn of assembly.resources('AWS::Lambda::Function')) {
    const name = assembly.reference(fn.stack, fn.logicalId);
    const functionArn = assembly.reference(fn.stack, fn.logicalId, 'Arn');
    const role = deployment.role(text(fn.properties.Role));
    const { account, region } = fn.stack;
    uses(role.arn, 'lambda.amazonaws.com', { ...sourceAccount(fn.stack), 'aws:SourceArn': functionArn }, `function ${name}`);
    const logGroup = text((fn.properties.LoggingConfig as JsonObject | undefined)?.LogGroup ?? `/aws/lambda/${name}`);
    const stream = `arn:aws:logs:${region}:${account}:log-group:${logGroup}:log-stream:2026/01/01/[$LATEST]0123456789abcdef0123456789abcdef`;
    for (const action of ['logs:CreateLogStream', 'logs:PutLogEvents'])
      checks.push(
        asRole(deployment, role, name, {
          label: `function ${name} logging`,
          family: 'service',
          action,
          resource: stream,
          context: secure,
          expect: 'allowed',
          because: ["the Lambda runtime writes the function's logs"],
        }),
      );
  }

  // S3 server access logging: logging.s3.amazonaws.com writes the logs under the destination
  // bucket's policy, with aws:SourceArn = the logged bucket
  // (https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html#grant-log-delivery-permissions-general).
  for (const bucket of deployment.buckets) {
    if (!bucket.logging) continue;
    const destination = deployment.bucket(bucket.logging.destinationBucket);
    checks.push(
      asService(deployment, 'logging.s3.amazonaws.com', {
        label: `access logs of ${bucket.name}`,
        action: 's3:PutObject',
        resource: `${destination.arn}/${bucket.logging.prefix}2026-01-01-00-00-00-0123456789ABCDEF`,
        context: { ...secure, ...sourceAccount(bucket), 'aws:SourceArn': bucket.arn },
        because: ['S3 server access logging'],
      }),
    );
  }

  checks.push(...replicationChecks(deployment, uses), ...vaultReaderChecks(deployment));
  checks.push(...trustChecks(deployment, usage, new Set(ownStacks.map((stack) => stack.path))));
  return checks;
}

const EXAMPLE_KEY = 'orders/20260101T020000.000Z-abc123.dump.zst';

/** The bucket a replication rule writes into (Destination.Bucket, an S3 bucket ARN). */
function destinationOf(deployment: Deployment, rule: JsonObject) {
  const destination = rule.Destination as JsonObject;
  const name = /^arn:aws:s3:::(.+)$/.exec(text(destination.Bucket))?.[1];
  if (!name) throw new Error(`replication destination ${text(destination.Bucket)} is not a bucket ARN`);
  return { destination, bucket: deployment.bucket(name) };
}

/** The replicated prefix of a rule (Filter.Prefix); the model knows no other filter. */
function prefixOf(rule: JsonObject): string {
  const filter = rule.Filter as JsonObject | undefined;
  if (!filter || typeof filter.Prefix !== 'string' || Object.keys(filter).length !== 1)
    throw new Error(`replication rule ${text(rule.Id ?? '?')} has a filter the model does not know: ${JSON.stringify(filter)}`);
  return filter.Prefix;
}

/** The buckets S3 Replication copies into (the vault), each with the prefixes it receives. */
export function replicationDestinations(deployment: Deployment): Map<string, string[]> {
  const destinations = new Map<string, string[]>();
  for (const source of deployment.buckets)
    for (const rule of source.replication?.rules ?? []) {
      const { bucket } = destinationOf(deployment, rule);
      destinations.set(bucket.name, [...(destinations.get(bucket.name) ?? []), prefixOf(rule)]);
    }
  return destinations;
}

const REPLICATION_PERMISSIONS = 'https://docs.aws.amazon.com/AmazonS3/latest/userguide/setting-repl-config-perm-overview.html';
const CROSS_ACCOUNT = 'https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html';

/**
 * S3 Replication, for every bucket with a ReplicationConfiguration: S3 assumes the configuration's
 * role (aws:SourceAccount, aws:SourceArn = the source bucket) and, as that role, reads the
 * configuration and the source versions, writes the replicas (into another account: the
 * destination's bucket policy must allow it too), overrides their owner where the rule says so,
 * decrypts SSE-KMS sources through S3 in the source region and encrypts replicas with the rule's
 * ReplicaKmsKeyID through S3 in the destination's region
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/setting-repl-config-perm-overview.html,
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-config-for-kms-objects.html,
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-change-owner.html).
 */
function replicationChecks(deployment: Deployment, uses: (roleArn: string, service: string, context: RequestContext, label: string) => void): Check[] {
  const checks: Check[] = [];
  for (const source of deployment.buckets) {
    if (!source.replication) continue;
    const role = deployment.role(source.replication.role);
    const label = `S3 Replication of ${source.name}`;
    uses(role.arn, 's3.amazonaws.com', { 'aws:SourceAccount': source.account, 'aws:SourceArn': source.arn }, label);
    const as = (action: string, resource: string, context: RequestContext, because: string) =>
      checks.push(
        asRole(deployment, role, 's3-replication', {
          label,
          family: 'service',
          action,
          resource,
          context: { ...secure, ...context },
          expect: 'allowed',
          because: [because],
        }),
      );
    const s3 = { 's3:TlsVersion': '1.2' };
    as('s3:GetReplicationConfiguration', source.arn, s3, `S3 reads the source bucket's replication configuration as the role (${REPLICATION_PERMISSIONS})`);
    as('s3:ListBucket', source.arn, s3, `S3 lists the source bucket as the role (${REPLICATION_PERMISSIONS})`);
    for (const rule of source.replication.rules) {
      const prefix = prefixOf(rule);
      const { destination, bucket: target } = destinationOf(deployment, rule);
      const sourceObject = `${source.arn}/${prefix}${EXAMPLE_KEY}`;
      const replica = `${target.arn}/${prefix}${EXAMPLE_KEY}`;
      for (const action of ['s3:GetObjectVersionForReplication', 's3:GetObjectVersionAcl'])
        as(action, sourceObject, s3, `S3 reads each source version and its ACL as the role (${REPLICATION_PERMISSIONS})`);
      if (source.objectLock)
        for (const action of ['s3:GetObjectRetention', 's3:GetObjectLegalHold'])
          as(
            action,
            sourceObject,
            s3,
            `the source bucket has Object Lock: S3 reads each version's retention and legal hold to replicate them (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html#object-lock-managing-replication)`,
          );
      const crossAccount = target.account !== source.account ? `; into account ${target.account}: its bucket policy must allow it too (${CROSS_ACCOUNT})` : '';
      as('s3:ReplicateObject', replica, s3, `S3 writes each replica as the role (${REPLICATION_PERMISSIONS})${crossAccount}`);
      if ((destination.AccessControlTranslation as JsonObject | undefined)?.Owner === 'Destination')
        as(
          's3:ObjectOwnerOverrideToBucketOwner',
          replica,
          s3,
          `the rule gives replicas to the destination's owner (https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-change-owner.html)${crossAccount}`,
        );
      const sse = (rule.SourceSelectionCriteria as JsonObject | undefined)?.SseKmsEncryptedObjects as JsonObject | undefined;
      if (sse?.Status !== 'Enabled') continue;
      const kmsDocs = 'https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-config-for-kms-objects.html';
      if (source.kmsKeyArn)
        as(
          'kms:Decrypt',
          source.kmsKeyArn,
          {
            'kms:ViaService': `s3.${source.region}.amazonaws.com`,
            'kms:CallerAccount': accountOfRole(role),
            'kms:EncryptionContext:aws:s3:arn': source.bucketKey ? source.arn : sourceObject,
            'aws:ViaAWSService': 'true',
          },
          `S3 decrypts each SSE-KMS source version with the role's permissions, through S3 in the source region (${kmsDocs})`,
        );
      const replicaKey = (destination.EncryptionConfiguration as JsonObject | undefined)?.ReplicaKmsKeyID;
      if (typeof replicaKey !== 'string') throw new Error(`${label}: SSE-KMS objects are replicated without a ReplicaKmsKeyID`);
      const keyArn = deployment.keyArn(replicaKey, target);
      for (const action of ['kms:Encrypt', 'kms:GenerateDataKey'])
        as(
          action,
          keyArn,
          {
            'kms:ViaService': `s3.${target.region}.amazonaws.com`,
            'kms:CallerAccount': accountOfRole(role),
            'kms:ResourceAliases': deployment.keyAliases(keyArn),
            'kms:EncryptionContext:aws:s3:arn': target.bucketKey ? target.arn : replica,
            'aws:ViaAWSService': 'true',
          },
          `S3 encrypts each replica with ReplicaKmsKeyID ${replicaKey}, with the role's permissions, through S3 in the destination's region (${kmsDocs})${target.account !== accountOfRole(role) ? `; a key of account ${target.account}: its key policy must allow it too (${CROSS_ACCOUNT})` : ''}`,
        );
    }
  }
  return checks;
}

/** Which source components read the replicas, and how: backup-health and enforce-retention read
 * the verdict tags of the copies in their PGKEEP_VAULT_BUCKET; the restore and drill tasks read
 * the copies of every replication destination as they read backups (a restore from the vault is the
 * restore task pointed at the vault bucket, infra/vault-access.ts); the vault's own verifier
 * (PGKEEP_VERIFY_SITE=vault) reads and tags the copies in its bucket. */
interface VaultReader {
  instance: ComponentInstance;
  bucket: string;
  actions: string[];
  decrypts: boolean;
}

function vaultReaders(deployment: Deployment): VaultReader[] {
  const destinations = [...replicationDestinations(deployment).keys()];
  return deployment.components.flatMap((instance): VaultReader[] => {
    if (instance.component === 'backup-health' || instance.component === 'enforce-retention') {
      const bucket = instance.settings.PGKEEP_VAULT_BUCKET;
      return bucket ? [{ instance, bucket, actions: ['s3:GetObjectTagging'], decrypts: false }] : [];
    }
    if (instance.component === 'restore' || instance.component === 'drill')
      return destinations.map((bucket) => ({
        instance,
        bucket,
        actions: ['s3:GetObject', 's3:GetObjectVersion', 's3:GetObjectTagging', 's3:RestoreObject'],
        decrypts: true,
      }));
    if (instance.component === 'verify-backup' && instance.settings.PGKEEP_VERIFY_SITE === 'vault') {
      const bucket = destinations.find((name) => deployment.bucket(name).account === instance.account && deployment.bucket(name).region === instance.region);
      if (!bucket) throw new Error(`the vault verifier ${instance.name} is deployed where no replication destination is`);
      return [{ instance, bucket, actions: ['s3:GetObject', 's3:GetObjectTagging', 's3:PutObjectTagging'], decrypts: true }];
    }
    return [];
  });
}

/** (b) The source roles' reads of the vault's copies (cross-account: their identity policies and the
 * vault's bucket and key policies, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html),
 * and the vault verifier's. Made whether or not a test recorded these calls. */
function vaultReaderChecks(deployment: Deployment): Check[] {
  const checks: Check[] = [];
  for (const { instance, bucket: name, actions, decrypts } of vaultReaders(deployment)) {
    const bucket = deployment.bucket(name);
    const role = deployment.role(instance.roleArn);
    const copy = `${bucket.arn}/backups/${EXAMPLE_KEY}`;
    const label = `${instance.component} (${instance.name}) in the vault`;
    const why =
      instance.component === 'verify-backup'
        ? 'the vault verifier checks each copy against its manifest and tags its verdict (infra/vault-stack.ts)'
        : instance.component === 'restore' || instance.component === 'drill'
          ? 'a restore from the vault reads the copies as it reads backups (infra/vault-access.ts)'
          : "it reads the copies' verdict tags from PGKEEP_VAULT_BUCKET (catalog/vault.ts)";
    const s3 = { ...secure, 's3:TlsVersion': '1.2' };
    const as = (action: string, resource: string, context: RequestContext, because: string) =>
      checks.push(asRole(deployment, role, instance.component, { label, family: 'service', action, resource, context, expect: 'allowed', because: [because] }));
    for (const action of actions) as(action, copy, s3, why);
    as(
      's3:ListBucket',
      bucket.arn,
      { ...s3, 's3:prefix': 'backups/orders/' },
      `${why}; without s3:ListBucket S3 answers a missing copy with 403, not 404 (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html)`,
    );
    if (decrypts && bucket.kmsKeyArn)
      as(
        'kms:Decrypt',
        bucket.kmsKeyArn,
        {
          ...secure,
          'kms:ViaService': `s3.${bucket.region}.amazonaws.com`,
          'kms:CallerAccount': instance.account,
          'kms:ResourceAliases': deployment.keyAliases(bucket.kmsKeyArn),
          'kms:EncryptionContext:aws:s3:arn': bucket.bucketKey ? bucket.arn : copy,
          'aws:ViaAWSService': 'true',
        },
        `${why}; S3 decrypts SSE-KMS objects with the caller's permissions (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#require-sse-kms)`,
      );
  }
  return checks;
}

/** What S3 Replication's role and the source roles may not do in the vault. */
export function vaultNegatives(deployment: Deployment): Check[] {
  const checks: Check[] = [];
  const destinations = replicationDestinations(deployment);
  const deny = (role: Role, label: string, action: string, resource: string, because: string, context: RequestContext = {}) =>
    checks.push(
      asRole(deployment, role, 'negative', {
        label,
        family: 'negative',
        action,
        resource,
        context: { ...secure, 's3:TlsVersion': '1.2', ...context },
        expect: 'denied',
        because: [because],
      }),
    );
  for (const source of deployment.buckets) {
    if (!source.replication) continue;
    const role = deployment.role(source.replication.role);
    const label = `S3 Replication of ${source.name}`;
    for (const rule of source.replication.rules) {
      const prefix = prefixOf(rule);
      const { bucket: target } = destinationOf(deployment, rule);
      const replica = `${target.arn}/${prefix}${EXAMPLE_KEY}`;
      deny(role, label, 's3:ReplicateDelete', replica, 'a delete in the source never reaches the vault');
      deny(role, label, 's3:ReplicateTags', replica, "the copies' tags are the vault verifier's verdicts");
      deny(role, label, 's3:DeleteObject', replica, 'replication writes copies, never deletes them');
      deny(role, label, 's3:PutObjectRetention', replica, 'nobody in the source shortens a lock in the vault');
      deny(role, label, 's3:BypassGovernanceRetention', replica, 'nobody in the source bypasses a lock in the vault');
      deny(role, label, 's3:GetObjectVersionTagging', `${source.arn}/${prefix}${EXAMPLE_KEY}`, "replicas do not carry the source's tags");
    }
  }
  // Who reads which vault bucket how; every other role of another account may do nothing there.
  const readers = vaultReaders(deployment);
  const replicators = new Set(deployment.buckets.filter((bucket) => bucket.replication).map((bucket) => bucket.replication!.role));
  for (const [name] of destinations) {
    const bucket = deployment.bucket(name);
    const copy = `${bucket.arn}/backups/${EXAMPLE_KEY}`;
    for (const role of deployment.roles.filter((candidate) => accountOfRole(candidate) !== bucket.account)) {
      const granted = new Set(
        readers.filter((reader) => reader.bucket === name && reader.instance.roleArn === role.arn).flatMap((reader) => [...reader.actions, 's3:ListBucket']),
      );
      if (replicators.has(role.arn)) for (const action of ['s3:ReplicateObject', 's3:ObjectOwnerOverrideToBucketOwner']) granted.add(action);
      const label = `${role.name} of account ${accountOfRole(role)} in the vault`;
      for (const action of ['s3:ReplicateObject', 's3:GetObject', 's3:GetObjectTagging', 's3:PutObject', 's3:PutObjectTagging', 's3:DeleteObject'])
        if (!granted.has(action)) deny(role, label, action, copy, 'the vault admits only the named source roles, each for its own calls');
      if (!granted.has('s3:ListBucket'))
        deny(role, label, 's3:ListBucket', bucket.arn, 'the vault admits only the named source roles, each for its own calls', { 's3:prefix': 'backups/' });
    }
  }
  return checks;
}

/** Each role's trust policy admits exactly the services that use it, as they send the request, and nobody else. */
function trustChecks(
  deployment: Deployment,
  usage: Map<string, { service: string; context: RequestContext; label: string }[]>,
  ownStackPaths: ReadonlySet<string>,
): Check[] {
  const checks: Check[] = [];
  const services = new Set([...usage.values()].flat().map((use) => use.service));
  const strangers = [...new Set([...services, 'ec2.amazonaws.com', 'events.amazonaws.com', 'cloudwatch.amazonaws.com'])];
  for (const role of deployment.roles.filter((candidate) => ownStackPaths.has(candidate.where.split('/')[0]!))) {
    const uses = usage.get(role.arn);
    if (!uses) throw new Error(`role ${role.where} is used by nothing the model knows: no task definition, function or schedule names it`);
    const assume = (principal: string, context: RequestContext, label: string, expect: 'allowed' | 'denied', because: string): Check => ({
      id: `trust of ${role.where}: ${principal} (${label}) sts:AssumeRole${expect === 'denied' ? ' is denied' : ''}`,
      family: expect === 'allowed' ? 'service' : 'negative',
      principal,
      action: 'sts:AssumeRole',
      resource: role.arn,
      resourceAccount: accountOfRole(role),
      context: { ...secure, ...context },
      identity: [],
      resourcePolicy: role.trust,
      expect,
      because: [because],
    });
    const own = new Set(uses.map((use) => use.service));
    for (const use of uses) {
      checks.push(assume(use.service, use.context, use.label, 'allowed', `${use.label} runs as this role`));
      if (JSON.stringify(role.trust.document).includes('aws:SourceAccount')) {
        checks.push(
          assume(
            use.service,
            { ...use.context, 'aws:SourceAccount': '999999999999' },
            `${use.label}, from another account`,
            'denied',
            'confused-deputy protection',
          ),
        );
      }
    }
    for (const stranger of strangers.filter((service) => !own.has(service))) {
      checks.push(assume(stranger, { 'aws:SourceAccount': accountOfRole(role) }, 'another service', 'denied', 'the trust admits only its own service'));
    }
    checks.push({
      ...assume(
        `arn:aws:iam::${accountOfRole(role)}:role/someone-else`,
        {},
        'a principal of the account',
        'denied',
        'no IAM principal may assume a service role',
      ),
      identity: [
        {
          id: 'someone-else (may assume any role)',
          kind: 'identity',
          ours: false,
          document: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: '*' }] },
        },
      ],
    });
  }
  return checks;
}

/** For every allowed request a resource policy has a transport deny for, the same request without
 * TLS (aws:SecureTransport=false) or over TLS 1.1 (s3:TlsVersion) must be denied. */
export function transportNegatives(checks: readonly Check[]): Check[] {
  const negatives = new Map<string, Check>();
  for (const check of checks) {
    if (check.expect !== 'allowed' || !check.resourcePolicy) continue;
    const denies = check.resourcePolicy.document.Statement.filter((statement) => statement.Effect === 'Deny').map((statement) =>
      JSON.stringify(statement.Condition ?? {}),
    );
    const variants: [string, RequestContext][] = [];
    if (denies.some((condition) => condition.includes('aws:SecureTransport'))) variants.push(['without TLS', { 'aws:SecureTransport': 'false' }]);
    if (denies.some((condition) => condition.includes('s3:TlsVersion'))) variants.push(['over TLS 1.1', { 's3:TlsVersion': '1.1' }]);
    for (const [label, context] of variants) {
      // One per principal, action and policy: the deny does not depend on the key.
      const key = JSON.stringify([check.principal, check.action, check.resourcePolicy.id, label]);
      if (negatives.has(key)) continue;
      negatives.set(key, {
        ...check,
        id: `${check.id}, ${label}, is denied`,
        family: 'negative',
        context: { ...check.context, ...context },
        expect: 'denied',
        because: [`${check.resourcePolicy.id} denies requests ${label}`],
      });
    }
  }
  return [...negatives.values()];
}

/** What no pgkeep component may do, whatever it calls today (the infra tests assert the same of the policies). */
export function leastPrivilegeNegatives(deployment: Deployment, bucketOf: (instance: ComponentInstance) => string): Check[] {
  const checks = new Map<string, Check>();
  for (const instance of deployment.components) {
    const role = deployment.role(instance.roleArn);
    const bucket = deployment.bucket(bucketOf(instance));
    const backupObject = `${bucket.arn}/backups/orders/20260101T020000.000Z-abc123.dump.zst`;
    const forbidden: [string, string][] = [
      ['s3:DeleteObjectVersion', backupObject],
      ['s3:BypassGovernanceRetention', backupObject],
      ['s3:PutObjectRetention', backupObject],
      ['s3:PutObjectLegalHold', backupObject],
      ['s3:PutBucketPolicy', bucket.arn],
      ['s3:PutLifecycleConfiguration', bucket.arn],
      ['s3:PutBucketVersioning', bucket.arn],
      ['s3:DeleteBucket', bucket.arn],
      // Only retention deletes; only the backup task writes backups.
      ...(instance.component === 'enforce-retention' ? [] : [['s3:DeleteObject', backupObject] as [string, string]]),
      ...(instance.component === 'backup' ? [] : [['s3:PutObject', backupObject] as [string, string]]),
      // The backup task lists nothing and reads no tags.
      ...(instance.component === 'backup'
        ? [['s3:ListBucket', bucket.arn] as [string, string], ['s3:GetObjectTagging', backupObject] as [string, string]]
        : []),
      // The health check reads listings and tags, never an object.
      ...(instance.component === 'backup-health' ? [['s3:GetObject', backupObject] as [string, string]] : []),
    ];
    for (const [action, resource] of forbidden) {
      const check = asRole(deployment, role, instance.component, {
        label: `${instance.component} (${instance.name})`,
        family: 'negative',
        action,
        resource,
        context: { ...secure, 's3:TlsVersion': '1.2' },
        expect: 'denied',
        because: ['least privilege'],
      });
      checks.set(check.id, check);
    }
    // The bucket key is usable only through S3, never directly.
    if (bucket.kmsKeyArn) {
      const check = asRole(deployment, role, instance.component, {
        label: `${instance.component} (${instance.name}), directly`,
        family: 'negative',
        action: 'kms:Decrypt',
        resource: bucket.kmsKeyArn,
        context: { ...secure, 'kms:CallerAccount': instance.account },
        expect: 'denied',
        because: ['the bucket key only via S3 (kms:ViaService)'],
      });
      checks.set(check.id, check);
    }
  }
  return [...checks.values()];
}

/** Each bucket policy's transport denies deny what they promise, even to a principal allowed everything on the bucket. */
export function bucketTransportProbes(deployment: Deployment): Check[] {
  // An administrator of the bucket's own account: one of another account would be denied anyway.
  const administrator = (account: string): Role => ({
    arn: `arn:aws:iam::${account}:role/bucket-administrator`,
    name: 'bucket-administrator',
    where: 'a hypothetical administrator',
    trust: { id: 'none', kind: 'trust', ours: false, document: { Version: '2012-10-17', Statement: [] } },
    identity: [
      {
        id: 'bucket-administrator (s3:* on everything)',
        kind: 'identity',
        ours: false,
        document: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: '*' }] },
      },
    ],
  });
  const checks: Check[] = [];
  for (const bucket of deployment.buckets) {
    const admin = administrator(bucket.account);
    const policy = deployment.resourcePolicy(bucket.arn);
    if (!policy) continue;
    const conditions = policy.document.Statement.filter((statement) => statement.Effect === 'Deny').map((statement) =>
      JSON.stringify(statement.Condition ?? {}),
    );
    const variants: [string, RequestContext][] = [
      ...(conditions.some((condition) => condition.includes('aws:SecureTransport'))
        ? [['without TLS', { 'aws:SecureTransport': 'false', 's3:TlsVersion': '1.2' }] as [string, RequestContext]]
        : []),
      ...(conditions.some((condition) => condition.includes('s3:TlsVersion'))
        ? [['over TLS 1.1', { 'aws:SecureTransport': 'true', 's3:TlsVersion': '1.1' }] as [string, RequestContext]]
        : []),
    ];
    for (const [label, context] of variants) {
      for (const [action, resource] of [
        ['s3:GetObject', `${bucket.arn}/any/object`],
        ['s3:ListBucket', bucket.arn],
      ] as const) {
        checks.push(
          asRole(deployment, admin, 'administrator', {
            label: `an administrator ${label}`,
            family: 'negative',
            action,
            resource,
            context,
            expect: 'denied',
            because: [`${policy.id} denies requests ${label}`],
          }),
        );
      }
    }
  }
  return checks;
}
