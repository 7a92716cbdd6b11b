/**
 * One database's resources, in a CloudFormation nested stack of its own: its backup task
 * definition and schedule, its restore task definition, and its alarms (about twenty resources).
 *
 * Why a nested stack per database: CloudFormation allows 500 resources per stack, and a flat
 * pipeline stack reached it at the 19th database. A stack per database also keeps each database's
 * resources apart: adding or removing one never moves another's between stacks, and inside its
 * stack each construct keeps the id it had in the flat layout, hence the same logical ids.
 */
import { NestedStack } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { DatabaseAlarms } from './backup-alarms.ts';
import type { DatabaseConfig, EnvironmentConfig } from './config.ts';
import { databaseResourceKey } from './config.ts';
import type { SharedBackupResources } from './database-backup.ts';
import { DatabaseBackup } from './database-backup.ts';
import type { SharedRestoreResources } from './database-restore.ts';
import { DatabaseRestore } from './database-restore.ts';
import { RestoreAlarms } from './restore-alarms.ts';

export interface DatabaseStackProps {
  environment: EnvironmentConfig;
  database: DatabaseConfig;
  backup: Omit<SharedBackupResources, 'environment'>;
  restore: Omit<SharedRestoreResources, 'environment'>;
  alertsTopic: sns.ITopic;
  /** The environment's "drill not attempted" alarm, an input of the drill-overdue composite. */
  drillNotAttempted: cloudwatch.IAlarm | undefined;
}

export class DatabaseStack extends NestedStack {
  readonly backup: DatabaseBackup;
  readonly restore: DatabaseRestore;
  readonly alarms: DatabaseAlarms;
  readonly restoreAlarms: RestoreAlarms;

  constructor(scope: Construct, id: string, props: DatabaseStackProps) {
    const { environment, database } = props;
    super(scope, id, {
      description: `pgkeep ${environment.name}: database ${JSON.stringify(database.name)}: backup task and schedule, restore task, alarms`,
    });
    const key = databaseResourceKey(database.name);
    this.backup = new DatabaseBackup(this, `Backup${key}`, { database, shared: { ...props.backup, environment } });
    this.restore = new DatabaseRestore(this, `Restore${key}`, { database, shared: { ...props.restore, environment } });
    this.alarms = new DatabaseAlarms(this, `Alarms${key}`, { environment, database, topic: props.alertsTopic });
    this.restoreAlarms = new RestoreAlarms(this, `RestoreAlarms${key}`, { environment, database, topic: props.alertsTopic, drillNotAttempted: props.drillNotAttempted });
  }
}
