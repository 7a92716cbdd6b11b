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

function sessionOf(role: Role, session: string): string {
  return `arn:aws:sts::${role.arn.split(':')[4]}:assumed-role/${role.name}/${session}`;
}

/** A check made as `role` (a session of it), with the context keys AWS adds for every such request. */
function asRole(
  deployment: Deployment,
  role: Role,
  session: string,
  request: Omit<Check, 'principal' | 'identity' | 'resourcePolicy' | 'id'> & { resourcePolicy?: NamedPolicy | undefined; label: string },
): Check {
  const { label, ...rest } = request;
  return {
    ...rest,
    id: `${label}: ${request.action} on ${request.resource}${request.expect === 'denied' ? ' is denied' : ''}`,
    principal: sessionOf(role, session),
    identity: role.identity,
    resourcePolicy: request.resourcePolicy ?? deployment.resourcePolicy(request.resource),
    context: { 'aws:PrincipalArn': role.arn, 'aws:PrincipalAccount': deployment.account, ...request.context },
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

function madeBy(call: RecordedCall, instance: ComponentInstance): boolean {
  return Object.entries(CALL_SWITCHES[call.component] ?? {}).every(
    ([name, fallback]) => call.settings?.[name] === undefined || call.settings[name] === (instance.settings[name] ?? fallback),
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
  const { assembly, account, region } = deployment;
  const checks: Check[] = [];
  const usage = new Map<string, { service: string; context: RequestContext; label: string }[]>();
  const uses = (roleArn: string, service: string, context: RequestContext, label: string) =>
    usage.set(roleArn, [...(usage.get(roleArn) ?? []), { service, context, label }]);
  const sourceAccount = { 'aws:SourceAccount': account };

  // Publishing to an SNS topic as a service, and the topic key's use on its behalf.
  const publishAsService = (service: string, topicArn: string, sourceArn: string, label: string, kmsContext: RequestContext) => {
    checks.push(
      asService(deployment, service, {
        label,
        action: 'sns:Publish',
        resource: topicArn,
        context: { ...secure, ...sourceAccount, 'aws:SourceArn': sourceArn },
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
        ...sourceAccount,
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
      const functionArn = deployment.functionArn(text(entry.LambdaFunctionArn));
      checks.push(
        asService(deployment, 's3.amazonaws.com', {
          label: `notification of bucket ${bucket.name}`,
          action: 'lambda:InvokeFunction',
          resource: functionArn,
          context: { ...secure, ...sourceAccount, 'aws:SourceArn': bucket.arn },
          because: ['S3 event notification'],
        }),
      );
    }
    const handler = assembly
      .resources('AWS::Lambda::Function')
      .find((fn) => assembly.reference(fn.stack, fn.logicalId, 'Arn') === text(notification.properties.ServiceToken));
    if (!handler) throw new Error(`the notification custom resource's handler ${text(notification.properties.ServiceToken)} is not in the assembly`);
    const handlerRole = deployment.role(text(handler.properties.Role));
    for (const action of ['s3:GetBucketNotification', 's3:PutBucketNotification']) {
      checks.push(
        asRole(deployment, handlerRole, 'cloudformation', {
          label: `CDK's notification handler (deploy time)`,
          family: 'service',
          action,
          resource: bucket.arn,
          context: { ...secure, 's3:TlsVersion': '1.2' },
          expect: 'allowed',
          because: ["Custom::S3BucketNotifications merges its configuration into the bucket's"],
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
    uses(role.arn, 'scheduler.amazonaws.com', { ...sourceAccount, 'aws:SourceArn': `arn:aws:scheduler:${region}:${account}:schedule-group/${group}` }, label);
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
    const taskArn = `arn:aws:ecs:${region}:${account}:task/${family}/0123456789abcdef0123456789abcdef`;
    if (typeof definition.properties.TaskRoleArn === 'string')
      uses(definition.properties.TaskRoleArn, 'ecs-tasks.amazonaws.com', { ...sourceAccount, 'aws:SourceArn': taskArn }, `task role of ${family}`);
    const executionRoleArn = definition.properties.ExecutionRoleArn;
    if (typeof executionRoleArn !== 'string') continue;
    const role = deployment.role(executionRoleArn);
    uses(role.arn, 'ecs-tasks.amazonaws.com', { ...sourceAccount, 'aws:SourceArn': taskArn }, `execution role of ${family}`);
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
    uses(role.arn, 'lambda.amazonaws.com', { ...sourceAccount, 'aws:SourceArn': functionArn }, `function ${name}`);
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
        context: { ...secure, ...sourceAccount, 'aws:SourceArn': bucket.arn },
        because: ['S3 server access logging'],
      }),
    );
  }

  checks.push(...trustChecks(deployment, usage, new Set(ownStacks.map((stack) => stack.path))));
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
      checks.push(assume(stranger, { 'aws:SourceAccount': deployment.account }, 'another service', 'denied', 'the trust admits only its own service'));
    }
    checks.push({
      ...assume(
        `arn:aws:iam::${deployment.account}:role/someone-else`,
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
        context: { ...secure, 'kms:CallerAccount': deployment.account },
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
  const admin: Role = {
    arn: `arn:aws:iam::${deployment.account}:role/bucket-administrator`,
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
  };
  const checks: Check[] = [];
  for (const bucket of deployment.buckets) {
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
