/**
 * The CDK feature flags pgkeep's constructs are built and tested with: cdk.json's context (the flags
 * `cdk init` recommends for the pinned aws-cdk-lib), read from cdk.json itself so that there is one
 * list (the package build copies it beside the compiled code). A CDK app of your own has its own
 * cdk.json, and some of these flags change what pgkeep's resources are; without
 * `@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy`, for one, CDK grants the access-log bucket by
 * ACL, which its enforced bucket ownership refuses. So PgkeepEnvironment sets these on its own
 * subtree, and its stacks come out as the tests saw them whatever the app's flags are.
 */
import cdkJson from '../cdk.json' with { type: 'json' };

export const PGKEEP_FEATURE_FLAGS: Readonly<Record<string, unknown>> = cdkJson.context;
