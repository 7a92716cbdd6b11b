/**
 * The source half of the vault (docs/vault.md): S3 Replication of the backup bucket's `backups/`
 * and `drills/` into the vault bucket (infra/vault-stack.ts), and the role S3 replicates with.
 * S3 does the copying; pgkeep writes no copy code.
 *
 * The rules replicate:
 * - SSE-KMS objects (SourceSelectionCriteria), re-encrypted under the vault's key, named by its
 *   alias ARN, which S3 accepts as ReplicaKmsKeyID
 *   (https://docs.aws.amazon.com/AmazonS3/latest/API/API_EncryptionConfiguration.html);
 * - with the owner overridden to the vault's account;
 * - with replication metrics on (OperationsFailedReplication feeds the replication-failed alarm),
 *   and Replication Time Control where configured.
 * They never replicate delete markers: retention in the source must never delete the vault's
 * copies. Nor tags: the role lacks s3:GetObjectVersionTagging, so each copy's tags are the vault
 * verifier's own verdict.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { VAULT_REPLICATED_PREFIXES, vaultBucketName, vaultKeyAlias, vaultKeyAliasArn, vaultSourceRoleName } from '../catalog/vault.ts';
import type { VaultConfig } from './config.ts';

/** The replication rule of each replicated prefix, by id: the replication-failed alarm's RuleId. */
export function replicationRuleId(prefix: (typeof VAULT_REPLICATED_PREFIXES)[number]): string {
  return `vault-${prefix.replace(/\/$/, '')}`;
}

export function addVaultReplication(bucket: s3.Bucket, key: kms.IKey, environmentName: string, vault: VaultConfig): iam.Role {
  const stack = Stack.of(bucket);
  const destinationBucket = vaultBucketName(environmentName, vault.account, vault.region);
  const destinationArn = `arn:${stack.partition}:s3:::${destinationBucket}`;
  const role = new iam.Role(bucket, 'VaultReplicationRole', {
    roleName: vaultSourceRoleName(environmentName, 'replication'),
    description: `pgkeep ${environmentName}: S3 Replication copies backups and drill records into the vault ${destinationBucket} with this role`,
    // Confined to this account's buckets. Not to this bucket's ARN: the bucket's replication
    // configuration names the role, so a trust condition naming the bucket would be a cycle.
    assumedBy: new iam.ServicePrincipal('s3.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': stack.account } } }),
  });
  const sourceObjects = VAULT_REPLICATED_PREFIXES.map((prefix) => bucket.arnForObjects(`${prefix}*`));
  const destinationObjects = VAULT_REPLICATED_PREFIXES.map((prefix) => `${destinationArn}/${prefix}*`);
  role.addToPolicy(
    new iam.PolicyStatement({
      sid: 'ReadReplicationConfiguration',
      actions: ['s3:GetReplicationConfiguration', 's3:ListBucket'],
      resources: [bucket.bucketArn],
    }),
  );
  role.addToPolicy(
    new iam.PolicyStatement({
      sid: 'ReadVersionsToReplicate',
      // The object, its ACL and its Object Lock settings; deliberately not its tags.
      actions: ['s3:GetObjectVersionForReplication', 's3:GetObjectVersionAcl', 's3:GetObjectRetention', 's3:GetObjectLegalHold'],
      resources: sourceObjects,
    }),
  );
  role.addToPolicy(
    new iam.PolicyStatement({
      sid: 'WriteCopiesIntoVault',
      actions: ['s3:ReplicateObject', 's3:ObjectOwnerOverrideToBucketOwner'],
      resources: destinationObjects,
    }),
  );
  role.addToPolicy(
    new iam.PolicyStatement({
      sid: 'DecryptBackups',
      actions: ['kms:Decrypt'],
      resources: [key.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `s3.${stack.region}.amazonaws.com` } },
    }),
  );
  role.addToPolicy(
    new iam.PolicyStatement({
      sid: 'EncryptCopiesWithVaultKey',
      actions: ['kms:Encrypt', 'kms:GenerateDataKey'],
      // The vault key's id is generated in the other account; its alias is fixed (catalog/vault.ts).
      resources: [`arn:${stack.partition}:kms:${vault.region}:${vault.account}:key/*`],
      conditions: {
        'ForAnyValue:StringEquals': { 'kms:ResourceAliases': [vaultKeyAlias(environmentName)] },
        StringEquals: { 'kms:ViaService': `s3.${vault.region}.amazonaws.com` },
      },
    }),
  );
  // cdk-nag names each finding by the resource as synthesized (a bucket ARN token as <LogicalId.Arn>).
  const bucketLogicalId = stack.getLogicalId(bucket.node.defaultChild as s3.CfnBucket);
  const findings = [...VAULT_REPLICATED_PREFIXES.map((prefix) => `<${bucketLogicalId}.Arn>/${prefix}*`), ...destinationObjects];
  for (const resource of findings) {
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${resource}]`,
      reason:
        'Backup and drill record keys are new on every run, so only their prefix can name them; the wildcard is confined to that prefix of the one bucket.',
    });
  }
  Validations.of(role).acknowledge({
    id: `AwsSolutions-IAM5[Resource::arn:${stack.partition}:kms:${vault.region}:${vault.account}:key/*]`,
    reason:
      "The vault key's id is generated in the vault account, so it is named by key/*, confined to the key carrying the vault alias (kms:ResourceAliases) and to requests made through S3 in the vault's region.",
  });

  (bucket.node.defaultChild as s3.CfnBucket).replicationConfiguration = {
    role: role.roleArn,
    rules: VAULT_REPLICATED_PREFIXES.map((prefix, index) => ({
      id: replicationRuleId(prefix),
      priority: index + 1,
      status: 'Enabled',
      filter: { prefix },
      deleteMarkerReplication: { status: 'Disabled' },
      sourceSelectionCriteria: { sseKmsEncryptedObjects: { status: 'Enabled' } },
      destination: {
        bucket: destinationArn,
        account: vault.account,
        accessControlTranslation: { owner: 'Destination' },
        encryptionConfiguration: { replicaKmsKeyId: vaultKeyAliasArn(environmentName, vault.account, vault.region) },
        ...(vault.replicationTimeControl
          ? { replicationTime: { status: 'Enabled', time: { minutes: 15 } }, metrics: { status: 'Enabled', eventThreshold: { minutes: 15 } } }
          : { metrics: { status: 'Enabled' } }),
      },
    })),
  };
  return role;
}
