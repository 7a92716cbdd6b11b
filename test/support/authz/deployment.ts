/**
 * The deployed system's authorization facts, read from a cloud assembly (test/support/authz/cloud-assembly.ts):
 * every role with its trust policy and identity policies (inline, AWS::IAM::Policy, customer-managed
 * ones from any stack, AWS-managed ones), every resource policy (bucket, key, topic and queue
 * policies, Lambda permissions), and which role each runtime component runs as, with the settings
 * its task definition or function gives it. Nothing here is a list of pgkeep's resources: a new
 * role, policy, key or function in any stack, nested ones included, is found the same way.
 */
import type { Component } from '../aws-call-recorder.ts';
import { isComponent } from '../aws-call-recorder.ts';
import { text, type AssemblyStack, type CloudAssembly, type Json, type JsonObject, type LocatedResource } from './cloud-assembly.ts';

export interface PolicyDocument {
  Version: string;
  Statement: JsonObject[];
}

export interface NamedPolicy {
  /** Where it is written: `<stack path>/<logical id>[/<policy name>]`, or the AWS-managed policy's ARN. */
  id: string;
  kind: 'identity' | 'resource' | 'trust';
  document: PolicyDocument;
  /** pgkeep's own statements, which the mutation drops one by one; AWS-managed policies are not. */
  ours: boolean;
}

export interface Role {
  arn: string;
  name: string;
  where: string;
  trust: NamedPolicy;
  identity: NamedPolicy[];
}

/** Where a stack, and so each resource in it, is deployed. */
export interface Site {
  account: string;
  region: string;
}

export interface ComponentInstance extends Site {
  component: Component;
  kind: 'task' | 'function';
  /** The task definition family or the function name. */
  name: string;
  roleArn: string;
  /** Its environment as deployed (PGKEEP_BUCKET, PGKEEP_KMS_KEY_ID, PGKEEP_ALERT_TOPIC_ARN, …). */
  settings: Record<string, string>;
}

export interface BucketFacts extends Site {
  name: string;
  arn: string;
  /** The default encryption's key, when it is SSE-KMS. */
  kmsKeyArn: string | undefined;
  bucketKey: boolean;
  objectLock: boolean;
  logging: { destinationBucket: string; prefix: string } | undefined;
  /** Its S3 Replication rules, as the template writes them. */
  replication: { role: string; rules: JsonObject[] } | undefined;
}

/** AWS-managed policies the templates attach, with their documents (they are not in any template). */
const AWS_MANAGED_POLICIES: Record<string, PolicyDocument> = {
  // https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSLambdaBasicExecutionRole.html
  'arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole': {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'], Resource: '*' }],
  },
};

export function asList(value: Json | undefined): Json[] {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

function document(value: Json | undefined, where: string): PolicyDocument {
  const statements = asList((value as JsonObject | undefined)?.Statement);
  if (!value || statements.length === 0) throw new Error(`${where}: a policy without statements`);
  return { Version: text((value as JsonObject).Version ?? '2012-10-17'), Statement: statements as JsonObject[] };
}

const where = (resource: LocatedResource, suffix = ''): string => `${resource.stack.path}/${resource.logicalId}${suffix}`;

/** An SQS queue URL (what Ref returns and queue policies name) as its ARN. */
export function queueArnOfUrl(url: string): string {
  const match = /^https:\/\/sqs\.([a-z0-9-]+)\.amazonaws\.com\/(\d{12})\/(.+)$/.exec(url);
  if (!match) throw new Error(`not an SQS queue URL: ${url}`);
  return `arn:aws:sqs:${match[1]}:${match[2]}:${match[3]}`;
}

export class Deployment {
  readonly roles: Role[] = [];
  readonly components: ComponentInstance[] = [];
  readonly buckets: BucketFacts[] = [];
  readonly topicKeys = new Map<string, string>();
  /** Resource policies by the ARN they govern (a bucket policy by the bucket's ARN). */
  private readonly resourcePolicies = new Map<string, NamedPolicy>();
  /** The environment's home: the account and region most of its stacks are in (the source). Stacks
   * elsewhere (the vault, in another account and region) keep their own; every ARN the model builds
   * for a resource is built with its own stack's account and region. */
  readonly account: string;
  readonly region: string;

  constructor(readonly assembly: CloudAssembly) {
    const sites = new Map<string, number>();
    for (const stack of assembly.stacks) sites.set(`${stack.account}/${stack.region}`, (sites.get(`${stack.account}/${stack.region}`) ?? 0) + 1);
    const [home] = [...sites.entries()].sort((a, b) => b[1] - a[1]);
    if (!home) throw new Error('an assembly without stacks');
    const [account, region] = home[0].split('/') as [string, string];
    this.account = account;
    this.region = region;
    this.readRoles();
    this.readResourcePolicies();
    this.readComponents();
    this.readBuckets();
    for (const topic of assembly.resources('AWS::SNS::Topic')) {
      const key = topic.properties.KmsMasterKeyId;
      if (typeof key === 'string') this.topicKeys.set(assembly.reference(topic.stack, topic.logicalId), this.keyArn(key, topic.stack));
    }
  }

  /** A key id, key ARN, alias name or alias ARN as the key's ARN. An alias name or a bare key id
   * means the key of that name in `site`'s account and region (the caller's, as KMS reads it). */
  keyArn(reference: string, site: Site = this): string {
    if (reference.startsWith('arn:aws:kms:') && reference.includes(':key/')) return reference;
    for (const key of this.assembly.resources('AWS::KMS::Key')) {
      const id = this.assembly.reference(key.stack, key.logicalId);
      if (id === reference && key.stack.account === site.account && key.stack.region === site.region)
        return this.assembly.reference(key.stack, key.logicalId, 'Arn');
    }
    for (const alias of this.assembly.resources('AWS::KMS::Alias')) {
      const name = text(alias.properties.AliasName);
      const sameSite = alias.stack.account === site.account && alias.stack.region === site.region;
      if ((name === reference && sameSite) || `arn:aws:kms:${alias.stack.region}:${alias.stack.account}:${name}` === reference)
        return this.keyArn(text(alias.properties.TargetKeyId), alias.stack);
    }
    throw new Error(`no KMS key ${reference} in the assembly (for ${site.account}/${site.region})`);
  }

  /** The alias names (alias/...) that point at a key of the assembly. */
  keyAliases(keyArn: string): string[] {
    return this.assembly
      .resources('AWS::KMS::Alias')
      .filter((alias) => this.keyArn(text(alias.properties.TargetKeyId), alias.stack) === keyArn)
      .map((alias) => text(alias.properties.AliasName));
  }

  /** The account that owns a resource: the one in its ARN, or for an S3 ARN (which has none) its
   * bucket's stack's (a bucket not in the assembly: the home account's). A request for "*" (an
   * action without resource-level permissions, such as cloudwatch:PutMetricData) is made in the
   * caller's own account. */
  accountOf(resourceArn: string, callerAccount: string = this.account): string {
    const s3 = /^arn:aws:s3:::([^/]+)/.exec(resourceArn);
    if (s3) return this.buckets.find((bucket) => bucket.name === s3[1])?.account ?? this.account;
    const account = resourceArn.split(':')[4];
    return account && /^\d{12}$/.test(account) ? account : callerAccount;
  }

  role(arn: string): Role {
    const role = this.roles.find((candidate) => candidate.arn === arn);
    if (!role) throw new Error(`no role ${arn} in the assembly`);
    return role;
  }

  /** The resource policy that governs `resourceArn` (an object's: its bucket's policy). */
  resourcePolicy(resourceArn: string): NamedPolicy | undefined {
    const s3 = /^arn:aws:s3:::([^/]+)/.exec(resourceArn);
    return this.resourcePolicies.get(s3 ? `arn:aws:s3:::${s3[1]}` : resourceArn.replace(/:\*$/, ''));
  }

  bucket(name: string): BucketFacts {
    const bucket = this.buckets.find((candidate) => candidate.name === name);
    if (!bucket) throw new Error(`no bucket ${name} in the assembly`);
    return bucket;
  }

  /** Every policy the model evaluates, each once. */
  policies(): NamedPolicy[] {
    const all = new Map<string, NamedPolicy>();
    for (const role of this.roles) for (const policy of [role.trust, ...role.identity]) all.set(policy.id, policy);
    for (const policy of this.resourcePolicies.values()) all.set(policy.id, policy);
    return [...all.values()];
  }

  private readRoles(): void {
    const { assembly } = this;
    const managed = new Map<string, NamedPolicy>();
    const attachedByProperty = new Map<string, NamedPolicy[]>();
    for (const policy of assembly.resources('AWS::IAM::ManagedPolicy')) {
      const named: NamedPolicy = { id: where(policy), kind: 'identity', document: document(policy.properties.PolicyDocument, where(policy)), ours: true };
      managed.set(assembly.reference(policy.stack, policy.logicalId), named);
      for (const roleName of asList(policy.properties.Roles))
        attachedByProperty.set(text(roleName), [...(attachedByProperty.get(text(roleName)) ?? []), named]);
    }
    const inlineByRole = new Map<string, NamedPolicy[]>();
    for (const policy of [...assembly.resources('AWS::IAM::Policy'), ...assembly.resources('AWS::IAM::RolePolicy')]) {
      const named: NamedPolicy = { id: where(policy), kind: 'identity', document: document(policy.properties.PolicyDocument, where(policy)), ours: true };
      const roleNames = policy.type === 'AWS::IAM::RolePolicy' ? [policy.properties.RoleName] : asList(policy.properties.Roles);
      for (const roleName of roleNames) inlineByRole.set(text(roleName), [...(inlineByRole.get(text(roleName)) ?? []), named]);
    }
    for (const role of assembly.resources('AWS::IAM::Role')) {
      const name = assembly.reference(role.stack, role.logicalId);
      const managedPolicies = asList(role.properties.ManagedPolicyArns).map((value) => {
        const arn = text(value);
        const own = managed.get(arn);
        if (own) return own;
        const aws = AWS_MANAGED_POLICIES[arn];
        if (!aws)
          throw new Error(
            `${where(role)} attaches ${arn}, which is neither in the assembly nor an AWS-managed policy the model knows; add its document to test/support/authz/deployment.ts`,
          );
        return { id: arn, kind: 'identity' as const, document: aws, ours: false };
      });
      const inline = asList(role.properties.Policies).map((policy) => {
        const { PolicyName: policyName, PolicyDocument: policyDocument } = policy as JsonObject;
        return { id: where(role, `/${text(policyName)}`), kind: 'identity' as const, document: document(policyDocument, where(role)), ours: true };
      });
      this.roles.push({
        arn: assembly.reference(role.stack, role.logicalId, 'Arn'),
        name,
        where: where(role),
        trust: {
          id: where(role, '/AssumeRolePolicyDocument'),
          kind: 'trust',
          document: document(role.properties.AssumeRolePolicyDocument, where(role)),
          ours: true,
        },
        identity: [...inline, ...(inlineByRole.get(name) ?? []), ...managedPolicies, ...(attachedByProperty.get(name) ?? [])],
      });
    }
  }

  private setResourcePolicy(arn: string, policy: NamedPolicy): void {
    const existing = this.resourcePolicies.get(arn);
    if (existing) throw new Error(`${arn} has two resource policies: ${existing.id} and ${policy.id}`);
    this.resourcePolicies.set(arn, policy);
  }

  private readResourcePolicies(): void {
    const { assembly } = this;
    for (const policy of assembly.resources('AWS::S3::BucketPolicy')) {
      this.setResourcePolicy(`arn:aws:s3:::${text(policy.properties.Bucket)}`, {
        id: where(policy),
        kind: 'resource',
        document: document(policy.properties.PolicyDocument, where(policy)),
        ours: true,
      });
    }
    for (const key of assembly.resources('AWS::KMS::Key')) {
      this.setResourcePolicy(assembly.reference(key.stack, key.logicalId, 'Arn'), {
        id: where(key, '/KeyPolicy'),
        kind: 'resource',
        document: document(key.properties.KeyPolicy, where(key)),
        ours: true,
      });
    }
    for (const policy of assembly.resources('AWS::SNS::TopicPolicy')) {
      for (const topic of asList(policy.properties.Topics))
        this.setResourcePolicy(text(topic), {
          id: where(policy),
          kind: 'resource',
          document: document(policy.properties.PolicyDocument, where(policy)),
          ours: true,
        });
    }
    for (const policy of assembly.resources('AWS::SNS::TopicInlinePolicy')) {
      this.setResourcePolicy(text(policy.properties.TopicArn), {
        id: where(policy),
        kind: 'resource',
        document: document(policy.properties.PolicyDocument, where(policy)),
        ours: true,
      });
    }
    for (const policy of assembly.resources('AWS::SQS::QueuePolicy')) {
      for (const queue of asList(policy.properties.Queues))
        this.setResourcePolicy(queueArnOfUrl(text(queue)), {
          id: where(policy),
          kind: 'resource',
          document: document(policy.properties.PolicyDocument, where(policy)),
          ours: true,
        });
    }
    // A function's resource policy is the set of its AWS::Lambda::Permission resources, one statement each.
    const permissions = new Map<string, JsonObject[]>();
    for (const permission of assembly.resources('AWS::Lambda::Permission')) {
      const functionArn = this.functionArn(text(permission.properties.FunctionName), permission.stack);
      const principal = text(permission.properties.Principal);
      const conditions: JsonObject = {};
      if (permission.properties.SourceArn) conditions.ArnLike = { 'aws:SourceArn': permission.properties.SourceArn };
      if (permission.properties.SourceAccount) conditions.StringEquals = { 'aws:SourceAccount': permission.properties.SourceAccount };
      permissions.set(functionArn, [
        ...(permissions.get(functionArn) ?? []),
        {
          Sid: where(permission),
          Effect: 'Allow',
          Principal: principal.endsWith('.amazonaws.com') ? { Service: principal } : { AWS: principal },
          Action: text(permission.properties.Action),
          Resource: functionArn,
          ...(Object.keys(conditions).length > 0 ? { Condition: conditions } : {}),
        },
      ]);
    }
    for (const [functionArn, statements] of permissions)
      this.setResourcePolicy(functionArn, {
        id: `${functionArn} (Lambda permissions)`,
        kind: 'resource',
        document: { Version: '2012-10-17', Statement: statements },
        ours: true,
      });
  }

  /** A function's name (in `site`'s account and region), ARN or qualified ARN as its unqualified ARN. */
  functionArn(reference: string, site: Site = this): string {
    if (reference.startsWith('arn:aws:lambda:')) return reference.split(':').slice(0, 7).join(':');
    return `arn:aws:lambda:${site.region}:${site.account}:function:${reference}`;
  }

  private readComponents(): void {
    const { assembly } = this;
    for (const definition of assembly.resources('AWS::ECS::TaskDefinition')) {
      for (const container of asList(definition.properties.ContainerDefinitions) as JsonObject[]) {
        const command = asList(container.Command)[0];
        if (typeof command !== 'string' || !isComponent(command)) continue;
        this.components.push({
          component: command,
          kind: 'task',
          account: definition.stack.account,
          region: definition.stack.region,
          name: text(definition.properties.Family),
          roleArn: text(definition.properties.TaskRoleArn),
          settings: Object.fromEntries((asList(container.Environment) as JsonObject[]).map((variable) => [text(variable.Name), text(variable.Value)])),
        });
      }
    }
    for (const fn of assembly.resources('AWS::Lambda::Function')) {
      const variables = ((fn.properties.Environment as JsonObject | undefined)?.Variables ?? {}) as Record<string, Json>;
      // The house construct names the Powertools service pgkeep-<function>: that is how the model knows which handler runs.
      const service = /^pgkeep-(.+)$/.exec(text(variables.POWERTOOLS_SERVICE_NAME ?? ''))?.[1] ?? '';
      if (!isComponent(service)) continue;
      this.components.push({
        component: service,
        kind: 'function',
        account: fn.stack.account,
        region: fn.stack.region,
        name: assembly.reference(fn.stack, fn.logicalId),
        roleArn: text(fn.properties.Role),
        settings: Object.fromEntries(Object.entries(variables).map(([name, value]) => [name, text(value)])),
      });
    }
  }

  private readBuckets(): void {
    for (const bucket of this.assembly.resources('AWS::S3::Bucket')) {
      const name = this.assembly.reference(bucket.stack, bucket.logicalId);
      const rule = asList((bucket.properties.BucketEncryption as JsonObject | undefined)?.ServerSideEncryptionConfiguration)[0] as JsonObject | undefined;
      const byDefault = rule?.ServerSideEncryptionByDefault as JsonObject | undefined;
      const logging = bucket.properties.LoggingConfiguration as JsonObject | undefined;
      const replication = bucket.properties.ReplicationConfiguration as JsonObject | undefined;
      this.buckets.push({
        name,
        account: bucket.stack.account,
        region: bucket.stack.region,
        arn: `arn:aws:s3:::${name}`,
        kmsKeyArn:
          byDefault?.SSEAlgorithm === 'aws:kms' && typeof byDefault.KMSMasterKeyID === 'string'
            ? this.keyArn(byDefault.KMSMasterKeyID, bucket.stack)
            : undefined,
        bucketKey: rule?.BucketKeyEnabled === true,
        objectLock: bucket.properties.ObjectLockEnabled === true,
        logging: logging?.DestinationBucketName
          ? { destinationBucket: text(logging.DestinationBucketName), prefix: text(logging.LogFilePrefix ?? '') }
          : undefined,
        replication: replication ? { role: text(replication.Role), rules: asList(replication.Rules) as JsonObject[] } : undefined,
      });
    }
  }
}

export type { AssemblyStack, LocatedResource };
