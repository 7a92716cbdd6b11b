/**
 * The contract between the functions' build (functions/build.ts) and the infra that deploys them
 * (infra/assets.ts, infra/constructs/pgkeep-function.ts): which functions there are, and what
 * file of each bundle Lambda calls.
 */
export const FUNCTION_NAMES = ['verify-backup', 'backup-health', 'enforce-retention'] as const;

export type FunctionName = (typeof FUNCTION_NAMES)[number];

/** Each bundle is a directory with this module in it. */
export const FUNCTION_BUNDLE_FILE = 'index.mjs';

/** What Lambda calls: `handler`, exported by the bundle's module. */
export const FUNCTION_HANDLER = 'index.handler';
