/**
 * What the source environment's roles may do in the vault (infra/vault-stack.ts), the identity
 * half: a cross-account call needs both the caller's policy and the vault's bucket (and key)
 * policy to allow it. The vault's half admits exactly these roles by name (catalog/vault.ts).
 */
import { Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { BACKUP_ROOT_PREFIX } from '../catalog/keys.ts';
import { vaultBucketName, vaultKeyAlias } from '../catalog/vault.ts';
import type { VaultConfig } from './config.ts';

function vaultArns(role: iam.IRole, environmentName: string, vault: VaultConfig) {
  const partition = Stack.of(role).partition;
  const bucketArn = `arn:${partition}:s3:::${vaultBucketName(environmentName, vault.account, vault.region)}`;
  const copies = `${bucketArn}/${BACKUP_ROOT_PREFIX}*`;
  const keys = `arn:${partition}:kms:${vault.region}:${vault.account}:key/*`;
  // cdk-nag names a finding by the resource as synthesized (the stack's region is known, so is its partition).
  const finding = (arn: string) => `AwsSolutions-IAM5[Resource::${arn}]`;
  return { bucketArn, copies, keys, copiesFinding: finding(copies), keysFinding: finding(keys) };
}

function listCopies(bucketArn: string): iam.PolicyStatement {
  // Also what makes S3 answer a copy not (yet) there with 404 instead of 403.
  return new iam.PolicyStatement({
    sid: 'ListVaultCopies',
    actions: ['s3:ListBucket'],
    resources: [bucketArn],
    conditions: { StringLike: { 's3:prefix': `${BACKUP_ROOT_PREFIX}*` } },
  });
}

const COPY_WILDCARD_REASON =
  "Copies keep their backup keys, backups/<database>/<backup id>.*, new on every run; the wildcard is confined to that prefix of the vault bucket, and the vault's bucket policy admits this role for the same calls only.";

/** backup-health and enforce-retention: the vault verifier's verdict tags on the copies, nothing else. */
export function allowReadingVaultVerdicts(role: iam.Role, environmentName: string, vault: VaultConfig): void {
  const { bucketArn, copies, copiesFinding } = vaultArns(role, environmentName, vault);
  role.addToPolicy(listCopies(bucketArn));
  role.addToPolicy(new iam.PolicyStatement({ sid: 'ReadVaultCopyVerdicts', actions: ['s3:GetObjectTagging'], resources: [copies] }));
  Validations.of(role).acknowledge({ id: copiesFinding, reason: COPY_WILDCARD_REASON });
}

/** The restore and drill tasks: read the copies as they read backups, and decrypt them through S3. */
export function allowRestoringFromVault(role: iam.Role, environmentName: string, vault: VaultConfig): void {
  const { bucketArn, copies, keys, copiesFinding, keysFinding } = vaultArns(role, environmentName, vault);
  role.addToPolicy(listCopies(bucketArn));
  role.addToPolicy(
    new iam.PolicyStatement({
      sid: 'ReadVaultCopies',
      actions: ['s3:GetObject', 's3:GetObjectVersion', 's3:GetObjectTagging', 's3:RestoreObject'],
      resources: [copies],
    }),
  );
  role.addToPolicy(
    new iam.PolicyStatement({
      sid: 'DecryptVaultCopies',
      actions: ['kms:Decrypt'],
      // The vault key's id is generated in the vault account; its alias is fixed (catalog/vault.ts).
      resources: [keys],
      conditions: {
        'ForAnyValue:StringEquals': { 'kms:ResourceAliases': [vaultKeyAlias(environmentName)] },
        StringEquals: { 'kms:ViaService': `s3.${vault.region}.amazonaws.com` },
      },
    }),
  );
  Validations.of(role).acknowledge({ id: copiesFinding, reason: COPY_WILDCARD_REASON });
  Validations.of(role).acknowledge({
    id: keysFinding,
    reason:
      "The vault key's id is generated in the vault account, so it is named by key/*, confined to the key carrying the vault alias (kms:ResourceAliases) and to requests made through S3.",
  });
}
