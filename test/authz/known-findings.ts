/**
 * Real defects the authorization model shows in today's infrastructure, outside the files this
 * model's authors may change. Each is a check that fails today; the model test requires that the
 * failing checks are exactly the ones these findings match, so the test turns red when a finding
 * is fixed (remove it here) and when a new failure appears (fix it, or record it here with its
 * reason).
 */
import type { Check } from './evaluate.ts';

export interface KnownFinding {
  id: string;
  reason: string;
  matches(check: Check): boolean;
}

export const KNOWN_FINDINGS: readonly KnownFinding[] = [
  {
    id: 'alarm-actions-denied-by-topic-policy',
    reason:
      'The alerts topic policy that CDK writes (enforceSSL plus the EventBridge rule targets\' grant) allows sns:Publish only to events.amazonaws.com, so every CloudWatch alarm action is denied: the key policy lets cloudwatch.amazonaws.com use the topic key, but the topic policy must also allow it to publish (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services). Fix in infra/alerting.ts: allow cloudwatch.amazonaws.com sns:Publish with aws:SourceAccount (and aws:SourceArn of the alarms).',
    matches: (check) => check.principal === 'cloudwatch.amazonaws.com' && check.action === 'sns:Publish' && check.expect === 'allowed',
  },
  {
    id: 'secret-by-name-partial-arn',
    reason:
      'A database secret given by name (prod billing: pgkeep/prod/billing) becomes a partial ARN in the container\'s valueFrom, which is what ECS asks Secrets Manager for, while the execution role is granted <name>-?????? (aws-cdk#24142): GetSecretValue of the partial ARN is denied and the task cannot start. Fix in infra/database-backup.ts (importSecret): require the complete ARN, or grant the partial ARN as ECS requests it.',
    matches: (check) => check.action === 'secretsmanager:GetSecretValue' && check.expect === 'allowed' && !/-[A-Za-z0-9]{6}$/.test(check.resource),
  },
];
