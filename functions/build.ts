/**
 * Bundles each Lambda function into a directory of its own (index.mjs and its source map): the
 * directory CDK uploads as the function's code. The construct package's build writes them under
 * dist/assets/functions/ (infra/build-package.ts); a synth from the sources bundles them on the
 * fly into a scratch directory (infra/assets.ts). The same options either way, so the same code.
 */
import type { BuildOptions } from 'esbuild';
import { build, buildSync } from 'esbuild';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FunctionName } from '../catalog/function-bundles.ts';
import { FUNCTION_BUNDLE_FILE } from '../catalog/function-bundles.ts';

/** Each function's handler module. */
const FUNCTION_ENTRIES: Readonly<Record<FunctionName, string>> = {
  'verify-backup': 'verify-backup/handler.ts',
  'backup-health': 'backup-health/handler.ts',
  'enforce-retention': 'enforce-retention/handler.ts',
};

export async function buildFunctionBundle(name: FunctionName, outdir: string): Promise<string> {
  await build(bundleOptions(name, outdir));
  return outdir;
}

/** For a synth, which cannot wait: CDK stages an asset when the construct is created. */
export function buildFunctionBundleSync(name: FunctionName, outdir: string): string {
  buildSync(bundleOptions(name, outdir));
  return outdir;
}

function bundleOptions(name: FunctionName, outdir: string): BuildOptions {
  return {
    entryPoints: [fileURLToPath(new URL(FUNCTION_ENTRIES[name], import.meta.url))],
    outfile: join(outdir, FUNCTION_BUNDLE_FILE),
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'esm',
    // The ES module builds where packages ship both (the AWS SDK, Powertools): smaller bundles.
    mainFields: ['module', 'main'],
    minify: true,
    // A linked map: Node's --enable-source-maps (the functions' NODE_OPTIONS) finds it through the
    // bundle's sourceMappingURL comment, so stack traces in the logs point at the TypeScript sources.
    sourcemap: true,
    sourcesContent: false,
    // Lambda's Node.js runtimes carry the AWS SDK v3 and its Smithy packages; bundling them again
    // would double the bundle (0.5 MB to 1 MB measured) for no gain. The same choice CDK's
    // NodejsFunction makes for these runtimes, which built these functions before.
    external: ['@aws-sdk/*', '@smithy/*'],
    // ESM bundles have no `require`; some CommonJS dependencies still call it.
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
    logLevel: 'warning',
  };
}
