/**
 * A synthesized cloud assembly (what `cdk synth` writes) as the authorization model reads it:
 * every stack artifact in manifest.json and, recursively, every nested stack
 * (AWS::CloudFormation::Stack resources whose templates CDK writes into the assembly directory,
 * named by their `aws:asset:path` metadata), with CloudFormation's intrinsic functions resolved to
 * the values the deployed resources would have.
 *
 * What only CloudFormation knows at deploy time (a generated bucket name, a key id) becomes a
 * stable placeholder derived from the stack name and logical id, in the format the real value has,
 * so ARNs built from it are real ARNs for the policy evaluator. Anything the resolver does not
 * understand is an error naming it, never a silent guess.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface CfnResource {
  Type: string;
  Properties?: JsonObject;
  Metadata?: JsonObject;
  Condition?: string;
}

export interface CfnTemplate {
  Resources?: Record<string, CfnResource>;
  Parameters?: Record<string, { Default?: Json }>;
  Outputs?: Record<string, { Value: Json; Export?: { Name: Json } }>;
  Conditions?: Record<string, Json>;
}

export interface AssemblyStack {
  /** The deployed stack's name (a nested stack: its parent's name, its logical id and a suffix, as CloudFormation names it). */
  stackName: string;
  /** Where it is in the assembly: the artifact id, or `<parent path>/<nested stack logical id>`. */
  path: string;
  account: string;
  region: string;
  template: CfnTemplate;
  parent?: { stack: AssemblyStack; logicalId: string };
}

export interface LocatedResource {
  stack: AssemblyStack;
  logicalId: string;
  type: string;
  /** The resource's properties, every intrinsic resolved. */
  properties: JsonObject;
}

interface AssemblyManifest {
  artifacts?: Record<
    string,
    { type: string; environment?: string; properties?: { templateFile?: string; file?: string; stackName?: string }; displayName?: string }
  >;
}

interface AssetManifest {
  files?: Record<string, { source: { path?: string }; destinations: Record<string, { objectKey: string }> }>;
}

/** No value (AWS::NoValue): the property or list element is dropped. */
const NO_VALUE = Symbol('AWS::NoValue');

export class CloudAssembly {
  readonly stacks: AssemblyStack[] = [];
  /** File assets (nested stack templates, Lambda code) by the object key they are published under. */
  readonly assets = new Map<string, string>();

  constructor(readonly directory: string) {
    const manifest = JSON.parse(readFileSync(join(directory, 'manifest.json'), 'utf8')) as AssemblyManifest;
    for (const artifact of Object.values(manifest.artifacts ?? {})) {
      if (artifact.type !== 'cdk:asset-manifest' || !artifact.properties?.file) continue;
      const assets = JSON.parse(readFileSync(join(directory, artifact.properties.file), 'utf8')) as AssetManifest;
      for (const file of Object.values(assets.files ?? {})) {
        for (const destination of Object.values(file.destinations)) if (file.source.path) this.assets.set(destination.objectKey, file.source.path);
      }
    }
    for (const [id, artifact] of Object.entries(manifest.artifacts ?? {})) {
      if (artifact.type !== 'aws:cloudformation:stack') continue;
      const environment = /^aws:\/\/(\d{12})\/([a-z0-9-]+)$/.exec(artifact.environment ?? '');
      if (!environment?.[1] || !environment[2])
        throw new Error(`stack ${id} has no concrete environment (${artifact.environment}); pgkeep stacks name their account and region`);
      const templateFile = artifact.properties?.templateFile;
      if (!templateFile) throw new Error(`stack ${id} names no template file`);
      this.addStack({
        stackName: artifact.properties?.stackName ?? artifact.displayName ?? id,
        path: id,
        account: environment[1],
        region: environment[2],
        template: this.readTemplate(templateFile),
      });
    }
  }

  private readTemplate(file: string): CfnTemplate {
    return JSON.parse(readFileSync(join(this.directory, file), 'utf8')) as CfnTemplate;
  }

  private addStack(stack: AssemblyStack): void {
    this.stacks.push(stack);
    for (const [logicalId, resource] of Object.entries(stack.template.Resources ?? {})) {
      if (resource.Type !== 'AWS::CloudFormation::Stack') continue;
      // The template is the asset published under the object key its TemplateURL ends with (the
      // `aws:asset:path` metadata says the same, but only the CDK CLI asks for that metadata).
      const templateUrl = this.resolveText(stack, resource.Properties?.TemplateURL ?? null);
      const file = this.assets.get(templateUrl.split('/').at(-1) ?? '') ?? resource.Metadata?.['aws:asset:path'];
      if (typeof file !== 'string') throw new Error(`nested stack ${stack.path}/${logicalId}: its template ${templateUrl} is not in the assembly`);
      this.addStack({
        // CloudFormation names a nested stack <parent>-<logical id>-<random>.
        stackName: `${stack.stackName}-${logicalId}-${placeholderId(stack.path, logicalId).slice(0, 12).toUpperCase()}`,
        path: `${stack.path}/${logicalId}`,
        account: stack.account,
        region: stack.region,
        template: this.readTemplate(file),
        parent: { stack, logicalId },
      });
    }
  }

  /** Every resource of every stack (nested ones included), optionally of one type, properties resolved. */
  resources(type?: string): LocatedResource[] {
    return this.stacks.flatMap((stack) =>
      Object.entries(stack.template.Resources ?? {})
        .filter(([, resource]) => (type === undefined || resource.Type === type) && this.conditionHolds(stack, resource.Condition))
        .map(([logicalId, resource]) => ({ stack, logicalId, type: resource.Type, properties: this.resolve(stack, resource.Properties ?? {}) as JsonObject })),
    );
  }

  /** The value a resource attribute or Ref has once deployed. */
  reference(stack: AssemblyStack, logicalId: string, attribute?: string): string {
    return this.resolveText(stack, attribute === undefined ? { Ref: logicalId } : { 'Fn::GetAtt': [logicalId, attribute] });
  }

  resolveText(stack: AssemblyStack, value: Json): string {
    const resolved = this.resolve(stack, value);
    if (typeof resolved !== 'string') throw new Error(`${stack.path}: expected text, got ${JSON.stringify(resolved)}`);
    return resolved;
  }

  resolve(stack: AssemblyStack, value: Json): Json {
    const resolved = this.resolveValue(stack, value);
    return resolved === NO_VALUE ? null : resolved;
  }

  private resolveValue(stack: AssemblyStack, value: Json): Json | typeof NO_VALUE {
    if (Array.isArray(value)) return value.map((item) => this.resolveValue(stack, item)).filter((item): item is Json => item !== NO_VALUE);
    if (value === null || typeof value !== 'object') return value;
    const keys = Object.keys(value);
    const only = keys.length === 1 ? keys[0] : undefined;
    if (only === 'Ref') return this.ref(stack, text(value.Ref));
    if (only?.startsWith('Fn::') || only === 'Condition') return this.intrinsic(stack, only, value[only] ?? null);
    const object: JsonObject = {};
    for (const [key, item] of Object.entries(value)) {
      const resolved = this.resolveValue(stack, item);
      if (resolved !== NO_VALUE) object[key] = resolved;
    }
    return object;
  }

  private intrinsic(stack: AssemblyStack, name: string, argument: Json): Json | typeof NO_VALUE {
    const args = Array.isArray(argument) ? argument : [];
    switch (name) {
      case 'Fn::GetAtt': {
        const [logicalId, attribute] = Array.isArray(argument) ? argument.map((part) => text(part)) : text(argument).split(/\.(.*)/s);
        return this.getAtt(stack, logicalId ?? '', attribute ?? '');
      }
      case 'Fn::Join': {
        const [separator, parts] = args;
        const resolved = this.resolveValue(stack, parts ?? []);
        if (typeof separator !== 'string' || !Array.isArray(resolved)) throw new Error(`${stack.path}: malformed Fn::Join ${JSON.stringify(argument)}`);
        return resolved.map((part) => this.asText(stack, part)).join(separator);
      }
      case 'Fn::Sub': {
        const [template, variables] = typeof argument === 'string' ? [argument, {}] : (args as [string, JsonObject]);
        return template.replace(/\$\{([^}!][^}]*)\}/g, (_match, name: string) => {
          const variable = variables[name];
          if (variable !== undefined) return this.asText(stack, this.resolveValue(stack, variable));
          const [logicalId, attribute] = name.split(/\.(.*)/s);
          return attribute ? this.asText(stack, this.getAtt(stack, logicalId ?? '', attribute)) : this.asText(stack, this.ref(stack, name));
        });
      }
      case 'Fn::Select': {
        const [index, list] = args;
        const resolved = this.resolveValue(stack, list ?? []);
        const item = Array.isArray(resolved) ? resolved[Number(this.resolveValue(stack, index ?? 0))] : undefined;
        if (item === undefined) throw new Error(`${stack.path}: Fn::Select out of range: ${JSON.stringify(argument)}`);
        return item;
      }
      case 'Fn::Split': {
        const [separator, source] = args;
        return this.asText(stack, this.resolveValue(stack, source ?? '')).split(text(separator));
      }
      case 'Fn::If': {
        const [condition, whenTrue, whenFalse] = args;
        return this.resolveValue(stack, this.conditionHolds(stack, text(condition)) ? (whenTrue ?? null) : (whenFalse ?? null));
      }
      case 'Fn::GetStackOutput': {
        const { StackName: stackName, OutputName: outputName } = argument as { StackName?: Json; OutputName?: Json };
        const name = this.asText(stack, this.resolveValue(stack, stackName ?? null));
        const producer = this.stacks.find((candidate) => candidate.stackName === name);
        if (!producer) throw new Error(`${stack.path}: Fn::GetStackOutput names stack ${name}, which is not in the assembly`);
        return this.output(producer, this.asText(stack, this.resolveValue(stack, outputName ?? null)));
      }
      case 'Fn::ImportValue': {
        const exportName = this.asText(stack, this.resolveValue(stack, argument));
        for (const producer of this.stacks) {
          for (const [outputName, output] of Object.entries(producer.template.Outputs ?? {})) {
            if (output.Export && this.resolveText(producer, output.Export.Name) === exportName) return this.output(producer, outputName);
          }
        }
        throw new Error(`${stack.path}: no stack exports ${exportName}`);
      }
      case 'Fn::Equals': {
        const [left, right] = args;
        return JSON.stringify(this.resolveValue(stack, left ?? null)) === JSON.stringify(this.resolveValue(stack, right ?? null));
      }
      case 'Fn::Not':
        return !this.resolveValue(stack, args[0] ?? null);
      case 'Fn::And':
        return args.every((condition) => this.resolveValue(stack, condition) === true);
      case 'Fn::Or':
        return args.some((condition) => this.resolveValue(stack, condition) === true);
      case 'Condition':
        return this.conditionHolds(stack, text(argument));
      default:
        throw new Error(
          `${stack.path}: the authorization model does not resolve ${name} (${JSON.stringify(argument)}); teach test/support/authz/cloud-assembly.ts`,
        );
    }
  }

  private asText(stack: AssemblyStack, value: Json | typeof NO_VALUE): string {
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    throw new Error(`${stack.path}: expected text, got ${String(value === NO_VALUE ? 'AWS::NoValue' : JSON.stringify(value))}`);
  }

  private conditionHolds(stack: AssemblyStack, condition: string | undefined): boolean {
    if (condition === undefined) return true;
    const definition = stack.template.Conditions?.[condition];
    if (definition === undefined) throw new Error(`${stack.path}: unknown condition ${condition}`);
    return this.resolveValue(stack, definition) === true;
  }

  private output(stack: AssemblyStack, outputName: string): Json {
    const output = stack.template.Outputs?.[outputName];
    if (!output) throw new Error(`${stack.path} has no output ${outputName}`);
    return this.resolve(stack, output.Value);
  }

  private ref(stack: AssemblyStack, name: string): Json | typeof NO_VALUE {
    switch (name) {
      case 'AWS::AccountId':
        return stack.account;
      case 'AWS::Region':
        return stack.region;
      case 'AWS::Partition':
        return 'aws';
      case 'AWS::URLSuffix':
        return 'amazonaws.com';
      case 'AWS::StackName':
        return stack.stackName;
      case 'AWS::StackId':
        return `arn:aws:cloudformation:${stack.region}:${stack.account}:stack/${stack.stackName}/${placeholderUuid(stack.path)}`;
      case 'AWS::NoValue':
        return NO_VALUE;
    }
    const parameter = stack.template.Parameters?.[name];
    if (parameter) {
      if (stack.parent) {
        const parentResource = stack.parent.stack.template.Resources?.[stack.parent.logicalId];
        const passed = (parentResource?.Properties?.Parameters as JsonObject | undefined)?.[name];
        if (passed !== undefined) return this.resolveValue(stack.parent.stack, passed);
      }
      if (parameter.Default !== undefined) return parameter.Default;
      throw new Error(`${stack.path}: parameter ${name} has neither a value from its parent nor a default`);
    }
    const resource = this.resourceOf(stack, name);
    const properties = resource.Properties ?? {};
    const named = (property: string, fallback: () => string): string =>
      properties[property] !== undefined ? this.asText(stack, this.resolveValue(stack, properties[property] ?? null)) : fallback();
    const { account, region } = stack;
    switch (resource.Type) {
      case 'AWS::S3::Bucket':
        return named('BucketName', () => generatedName(stack, name, 63).toLowerCase());
      case 'AWS::KMS::Key':
        return placeholderUuid(`${stack.path}/${name}`);
      case 'AWS::IAM::Role':
        return named('RoleName', () => generatedName(stack, name, 64));
      case 'AWS::IAM::ManagedPolicy':
        return `arn:aws:iam::${account}:policy${named('Path', () => '/')}${named('ManagedPolicyName', () => generatedName(stack, name, 128))}`;
      case 'AWS::SNS::Topic':
        return `arn:aws:sns:${region}:${account}:${named('TopicName', () => generatedName(stack, name, 256))}`;
      case 'AWS::SQS::Queue':
        return `https://sqs.${region}.amazonaws.com/${account}/${named('QueueName', () => generatedName(stack, name, 80))}`;
      case 'AWS::Lambda::Function':
        return named('FunctionName', () => generatedName(stack, name, 64));
      case 'AWS::ECS::TaskDefinition':
        return `arn:aws:ecs:${region}:${account}:task-definition/${named('Family', () => generatedName(stack, name, 255))}:1`;
      case 'AWS::ECS::Cluster':
        return named('ClusterName', () => generatedName(stack, name, 255));
      case 'AWS::Logs::LogGroup':
        return named('LogGroupName', () => generatedName(stack, name, 512));
      case 'AWS::Scheduler::ScheduleGroup':
      case 'AWS::Scheduler::Schedule':
        return named('Name', () => generatedName(stack, name, 64));
      case 'AWS::Events::Rule':
        return named('Name', () => generatedName(stack, name, 64));
      case 'AWS::CloudWatch::Alarm':
      case 'AWS::CloudWatch::CompositeAlarm':
        return named('AlarmName', () => generatedName(stack, name, 255));
      case 'AWS::CloudFormation::Stack':
        return `arn:aws:cloudformation:${region}:${account}:stack/${this.nestedStack(stack, name).stackName}/${placeholderUuid(`${stack.path}/${name}`)}`;
      // A secret's Ref is its complete ARN: its name and the 6 characters Secrets Manager appends.
      case 'AWS::SecretsManager::Secret':
        return `arn:aws:secretsmanager:${region}:${account}:secret:${named('Name', () => generatedName(stack, name, 256))}-${placeholderId(stack.path, name).slice(0, 6)}`;
      // Its Ref is the ARN of the secret it attaches (the SecretId it was given).
      case 'AWS::SecretsManager::SecretTargetAttachment':
        return named('SecretId', () => {
          throw new Error(`${stack.path}: ${name} has no SecretId`);
        });
      case 'AWS::EC2::SecurityGroup':
        return `sg-${placeholderId(stack.path, name).slice(0, 17)}`;
      default:
        return `${name}-${placeholderId(stack.path, name).slice(0, 8)}`;
    }
  }

  private getAtt(stack: AssemblyStack, logicalId: string, attribute: string): Json {
    const resource = this.resourceOf(stack, logicalId);
    const { account, region } = stack;
    const ref = (): string => this.asText(stack, this.ref(stack, logicalId));
    if (resource.Type === 'AWS::CloudFormation::Stack' && attribute.startsWith('Outputs.'))
      return this.output(this.nestedStack(stack, logicalId), attribute.slice('Outputs.'.length));
    const arns: Record<string, () => string> = {
      'AWS::S3::Bucket': () => `arn:aws:s3:::${ref()}`,
      'AWS::KMS::Key': () => `arn:aws:kms:${region}:${account}:key/${ref()}`,
      'AWS::IAM::Role': () => `arn:aws:iam::${account}:role${this.asText(stack, this.resolveValue(stack, resource.Properties?.Path ?? '/'))}${ref()}`,
      'AWS::SNS::Topic': () => ref(),
      'AWS::SQS::Queue': () => `arn:aws:sqs:${region}:${account}:${ref().split('/').at(-1) ?? ''}`,
      'AWS::Lambda::Function': () => `arn:aws:lambda:${region}:${account}:function:${ref()}`,
      'AWS::ECS::Cluster': () => `arn:aws:ecs:${region}:${account}:cluster/${ref()}`,
      'AWS::ECS::TaskDefinition': () => ref(),
      'AWS::Logs::LogGroup': () => `arn:aws:logs:${region}:${account}:log-group:${ref()}:*`,
      'AWS::Scheduler::ScheduleGroup': () => `arn:aws:scheduler:${region}:${account}:schedule-group/${ref()}`,
      'AWS::Scheduler::Schedule': () =>
        `arn:aws:scheduler:${region}:${account}:schedule/${this.asText(stack, this.resolveValue(stack, resource.Properties?.GroupName ?? 'default'))}/${ref()}`,
      'AWS::Events::Rule': () => `arn:aws:events:${region}:${account}:rule/${ref()}`,
      'AWS::CloudWatch::Alarm': () => `arn:aws:cloudwatch:${region}:${account}:alarm:${ref()}`,
      'AWS::CloudWatch::CompositeAlarm': () => `arn:aws:cloudwatch:${region}:${account}:alarm:${ref()}`,
      'AWS::IAM::ManagedPolicy': () => ref(),
    };
    if (attribute === 'Arn' || (attribute === 'PolicyArn' && resource.Type === 'AWS::IAM::ManagedPolicy')) {
      const arn = arns[resource.Type];
      if (arn) return arn();
    }
    if (resource.Type === 'AWS::SNS::Topic' && attribute === 'TopicArn') return ref();
    if (resource.Type === 'AWS::SQS::Queue' && attribute === 'QueueUrl') return ref();
    if (resource.Type === 'AWS::SQS::Queue' && attribute === 'QueueName') return ref().split('/').at(-1) ?? '';
    if (resource.Type === 'AWS::KMS::Key' && attribute === 'KeyId') return ref();
    if (resource.Type === 'AWS::IAM::Role' && attribute === 'RoleId') return `AROA${placeholderId(stack.path, logicalId).slice(0, 17).toUpperCase()}`;
    if (resource.Type === 'AWS::S3::Bucket' && attribute === 'RegionalDomainName') return `${ref()}.s3.${region}.amazonaws.com`;
    if (resource.Type === 'AWS::S3::Bucket' && attribute === 'DomainName') return `${ref()}.s3.amazonaws.com`;
    // The network and database of an app that defines them (examples/): ids and an endpoint in their formats.
    if (resource.Type === 'AWS::EC2::VPC' && attribute === 'DefaultSecurityGroup')
      return `sg-${placeholderId(stack.path, `${logicalId}/default`).slice(0, 17)}`;
    if (resource.Type === 'AWS::EC2::VPC' && attribute === 'CidrBlock')
      return this.asText(stack, this.resolveValue(stack, resource.Properties?.CidrBlock ?? '10.0.0.0/16'));
    if (resource.Type === 'AWS::EC2::SecurityGroup' && attribute === 'GroupId') return ref();
    if (resource.Type === 'AWS::RDS::DBInstance' && attribute === 'Endpoint.Port')
      return this.asText(stack, this.resolveValue(stack, resource.Properties?.Port ?? '5432'));
    if (resource.Type === 'AWS::RDS::DBInstance' && attribute === 'Endpoint.Address')
      return `${ref()}.${placeholderId(stack.path, logicalId).slice(0, 12)}.${region}.rds.amazonaws.com`;
    throw new Error(
      `${stack.path}: the authorization model does not know ${resource.Type}.${attribute} (Fn::GetAtt ${logicalId}.${attribute}); teach test/support/authz/cloud-assembly.ts`,
    );
  }

  private resourceOf(stack: AssemblyStack, logicalId: string): CfnResource {
    const resource = stack.template.Resources?.[logicalId];
    if (!resource) throw new Error(`${stack.path} has no resource or parameter ${logicalId}`);
    return resource;
  }

  private nestedStack(stack: AssemblyStack, logicalId: string): AssemblyStack {
    const nested = this.stacks.find((candidate) => candidate.parent?.stack === stack && candidate.parent.logicalId === logicalId);
    if (!nested) throw new Error(`${stack.path}/${logicalId} is not a nested stack of the assembly`);
    return nested;
  }
}

function placeholderId(...parts: string[]): string {
  return createHash('sha256').update(parts.join('/')).digest('hex');
}

/** A key id or stack id: a UUID derived from where the resource is. */
function placeholderUuid(path: string): string {
  const hex = placeholderId(path);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** CloudFormation's generated physical names: <stack name>-<logical id>-<random suffix>, truncated. */
function generatedName(stack: AssemblyStack, logicalId: string, maxLength: number): string {
  const suffix = placeholderId(stack.path, logicalId).slice(0, 12).toUpperCase();
  const head = `${stack.stackName}-${logicalId}`.slice(0, maxLength - suffix.length - 1);
  return `${head}-${suffix}`;
}

/** A resolved template value that must be text (a name, an ARN); anything else is a model error. */
export function text(value: Json | undefined): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new Error(`expected text in the template, got ${JSON.stringify(value)}`);
}
