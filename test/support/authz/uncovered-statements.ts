/**
 * Statements of pgkeep's policies that no check of the authorization model depends on (the
 * mutation in test/support/authz/mutation.ts finds them), each with why it stays. Labels are
 * statementLabel()'s, with the environment written as <env>. The model test fails on an uncovered
 * statement that is not here, and on an entry here that some check now depends on.
 */
const VAULT_VERIFIER_UNRECORDED =
  "The vault's verifier (verify-backup with PGKEEP_VERIFY_SITE=vault) sends this call, but no suite records verify-backup in vault mode yet, and the primary's recorded calls are not evidence for it (checks.ts CALL_SITES). Its S3 and KMS-via-S3 paths are service-path checks; this one becomes a runtime check, and leaves this list, once vault-mode calls are recorded.";

const VAULT_HAS_NO_RULES =
  "infra/alerting.ts's Alerting gives every alerts topic this statement for the environment's EventBridge rules; the vault stack defines no rule, so nothing in the vault uses it (it admits only rules of the vault account named for this environment, of which there are none).";

export const UNCOVERED_STATEMENTS: Readonly<Record<string, string>> = {
  'pgkeepprodVault2B1BC231/VerifyCopyFunctionRoleDefaultPolicyF9CF8019: PublishAlerts': VAULT_VERIFIER_UNRECORDED,
  'pgkeepprodVault2B1BC231/VerifyCopyFunctionRoleDefaultPolicyF9CF8019: EncryptAlerts': VAULT_VERIFIER_UNRECORDED,
  'pgkeepprodVault2B1BC231/VerifyCopyFunctionRoleDefaultPolicyF9CF8019: PublishBackupMetrics': VAULT_VERIFIER_UNRECORDED,
  // The default key statement: identity policies of the key's own account decide; only the vault
  // verifier's SNS-encryption calls (unrecorded, above) go through it.
  'pgkeepprodVault2B1BC231/AlertsTopicKey4FD54A73/KeyPolicy: Allow kms:* for {"AWS":"arn:aws:iam::333333333333:root"}': VAULT_VERIFIER_UNRECORDED,
  'pgkeepprodVault2B1BC231/AlertsTopicKey4FD54A73/KeyPolicy: AllowEventBridgeRulesToPublishEncrypted': VAULT_HAS_NO_RULES,
  'pgkeepprodVault2B1BC231/AlertsTopicPolicyFF1F97BA: AllowThisEnvironmentsRulesToPublish': VAULT_HAS_NO_RULES,
  'pgkeepprodVault2B1BC231/VaultBucketPolicy1B2D4C8C: SourceReplicationChecksVersioning':
    "AWS's cross-account replication example grants the source role s3:GetBucketVersioning on the destination bucket (https://docs.aws.amazon.com/AmazonS3/latest/userguide/setting-repl-config-perm-overview.html), but no documented request of replication makes it with the role's permissions: the role's identity policy does not grant it (nor does AWS's example role policy), so a request the model made as the role would be denied whatever this statement says. Kept as AWS's example has it.",
};
