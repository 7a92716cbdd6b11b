/**
 * One database's part of pgkeep, in a CloudFormation nested stack of its own: its backup task and
 * schedule, its restore task, its alarms (about twenty resources), and, when the database is a CDK
 * construct, the ingress rule that lets the tasks reach it.
 *
 * Why a nested stack per database: CloudFormation allows 500 resources per stack, and a flat
 * pipeline stack reached it at the 19th database. A stack per database also keeps each database's
 * resources apart: adding or removing one never moves another's between stacks, and inside its
 * stack each construct keeps the id it had in the flat layout, hence the same logical ids.
 *
 * The database and its secrets come as plain identifiers (a secret's complete ARN) or as CDK
 * constructs of the same app (an rds.DatabaseInstance or DatabaseCluster, a secretsmanager.Secret).
 */
import { NestedStack } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { DatabaseAlarms } from './backup-alarms.ts';
import type { DatabaseConfig, EnvironmentConfig, SecretInput } from './config.ts';
import { databaseResourceKey, databaseSecret } from './config.ts';
import type { SharedBackupResources } from './database-backup.ts';
import { DatabaseBackup } from './database-backup.ts';
import type { SharedRestoreResources } from './database-restore.ts';
import { DatabaseRestore } from './database-restore.ts';
import { RestoreAlarms } from './restore-alarms.ts';

export interface PgkeepDatabaseProps {
  environment: EnvironmentConfig;
  database: DatabaseConfig;
  backup: SharedBackupResources;
  restore: SharedRestoreResources;
  alertsTopic: sns.ITopic;
  /** The environment's "drill not attempted" alarm, an input of the drill-overdue composite. */
  drillNotAttempted: cloudwatch.IAlarm | undefined;
}

export class PgkeepDatabase extends NestedStack {
  readonly backup: DatabaseBackup;
  readonly restore: DatabaseRestore;
  readonly alarms: DatabaseAlarms;
  readonly restoreAlarms: RestoreAlarms;

  constructor(scope: Construct, id: string, props: PgkeepDatabaseProps) {
    const { environment, database } = props;
    super(scope, id, {
      description: `pgkeep ${environment.name}: database ${JSON.stringify(database.name)}: backup task and schedule, restore task, alarms`,
    });
    const key = databaseResourceKey(database.name);
    const secret = this.secret('Secret', databaseSecret(database));
    this.backup = new DatabaseBackup(this, `Backup${key}`, { database, secret, shared: props.backup });
    const dedicatedTarget = database.restoreTargetSecret !== undefined;
    this.restore = new DatabaseRestore(this, `Restore${key}`, {
      database,
      shared: props.restore,
      target: dedicatedTarget
        ? { secret: this.secret('TargetSecret', database.restoreTargetSecret!), kmsKeyArn: database.restoreTargetSecretKmsKeyArn, dedicated: true }
        : { secret, kmsKeyArn: database.secretKmsKeyArn, dedicated: false },
    });
    this.alarms = new DatabaseAlarms(this, `Alarms${key}`, { environment, database, topic: props.alertsTopic });
    this.restoreAlarms = new RestoreAlarms(this, `RestoreAlarms${key}`, {
      environment,
      database,
      topic: props.alertsTopic,
      drillNotAttempted: props.drillNotAttempted,
    });

    if (database.database) {
      // The tasks connect to the database's own port from their security group. The rule is this
      // stack's, not the database's stack's: there it would reference the task security group of
      // this stack while this stack references the database's, a cycle CloudFormation refuses.
      const taskSecurityGroup = props.backup.network.securityGroup;
      const port = database.database.connections.defaultPort;
      if (!port)
        throw new Error(
          `database ${JSON.stringify(database.name)}: its construct has no default port, so pgkeep cannot open it to the tasks; give the database's port to its connections`,
        );
      // Port.toRuleJson() is untyped in CDK; these are the fields it returns for a TCP port.
      const rule = port.toRuleJson() as { ipProtocol: string; fromPort?: number; toPort?: number };
      database.database.connections.securityGroups.forEach((group, index) => {
        new ec2.CfnSecurityGroupIngress(this, `DatabaseIngress${index === 0 ? '' : index}`, {
          groupId: group.securityGroupId,
          sourceSecurityGroupId: taskSecurityGroup.securityGroupId,
          ...rule,
          description: `pgkeep ${environment.name}: the backup and restore tasks connect to ${database.name}`,
        });
      });
    }
  }

  /** A secret by its complete ARN (so the task definition's valueFrom and the execution role's
   * grant name exactly the same ARN; infra/config.ts requires one), or the construct itself. */
  private secret(id: string, secret: SecretInput): secretsmanager.ISecret {
    return typeof secret === 'string' ? secretsmanager.Secret.fromSecretCompleteArn(this, id, secret) : secret;
  }
}
