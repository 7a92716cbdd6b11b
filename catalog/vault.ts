/**
 * The vault: a second copy of every backup in another region (and, usually, another account),
 * kept there by S3 Replication into an Object-Lock bucket the source account cannot shorten or
 * delete (docs/vault.md). The names both sides must agree on live here: the vault stack is
 * deployed with the destination account's credentials and cannot read the source stacks' tokens,
 * so the bucket, the key alias and the source principals it admits are derived from the
 * environment's name, account and region alone.
 *
 * The vault holds the same key layout as the backup bucket (catalog/keys.ts): replication keeps
 * each key. Its object tags are its own: replication does not carry the source's tags (the
 * replication role has no s3:GetObjectVersionTagging), so `pgkeep:verification` on a replica is
 * the vault verifier's verdict on that copy, never the primary's.
 */
import { BACKUP_ROOT_PREFIX, DRILL_ROOT_PREFIX } from './keys.ts';

/** What S3 Replication copies into the vault: the backups and the drill records (audit evidence). */
export const VAULT_REPLICATED_PREFIXES = [BACKUP_ROOT_PREFIX, DRILL_ROOT_PREFIX] as const;

/** `pgkeep-<env>-vault-<account>-<region>`: globally unique without a random part (at most 61
 * characters for a 20-character environment name, under S3's 63). */
export function vaultBucketName(environment: string, account: string, region: string): string {
  return `pgkeep-${environment}-vault-${account}-${region}`;
}

/** The alias of the vault's KMS key. The source's replication configuration names the key by its
 * alias ARN (which S3 accepts as ReplicaKmsKeyID), so the source needs no key id copied across. */
export function vaultKeyAlias(environment: string): string {
  return `alias/pgkeep/${environment}/vault`;
}

export function vaultKeyAliasArn(environment: string, account: string, region: string): string {
  return `arn:aws:kms:${region}:${account}:${vaultKeyAlias(environment)}`;
}

/**
 * The IAM roles of the source account that the vault's bucket policy and key policy admit, by
 * name (fixed names, so that the vault stack can name them before they exist; the policies match
 * them with aws:PrincipalArn, which S3 and KMS accept for roles not yet created).
 *
 * replication: S3 Replication's role (writes replicas). health and retention: read the replicas'
 * verification tags, nothing else. restore and drill: read and decrypt the copies, to restore
 * from the vault.
 */
export const VAULT_SOURCE_ROLES = ['replication', 'health', 'retention', 'restore', 'drill'] as const;
export type VaultSourceRole = (typeof VAULT_SOURCE_ROLES)[number];

export function vaultSourceRoleName(environment: string, role: VaultSourceRole): string {
  return `pgkeep-${environment}-vault-${role}`;
}

export function vaultSourceRoleArn(environment: string, account: string, role: VaultSourceRole): string {
  return `arn:aws:iam::${account}:role/${vaultSourceRoleName(environment, role)}`;
}
