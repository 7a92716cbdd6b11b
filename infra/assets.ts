/**
 * Where the code pgkeep deploys comes from: the task image and the three functions' bundles.
 *
 * The construct package ships them prebuilt under dist/assets/ (built by `npm run build`,
 * infra/build-package.ts), so a CDK app that installs pgkeep needs neither esbuild nor pgkeep's
 * sources, and the image's Docker build copies a prebuilt task bundle instead of running `npm ci`
 * (a published package carries no package-lock.json to run it from). This repository's own app and
 * tests build the same bundles from the sources (infra/source-assets.ts).
 *
 * Either way a function's bundle is byte for byte the same code, built by the same step
 * (functions/build.ts), so a consumer deploys what the tests checked.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { FunctionName } from '../catalog/function-bundles.ts';

export interface PgkeepAssets {
  /** The task image, for linux/arm64 (the task definitions' platform). */
  taskImage(): ecs.ContainerImage;
  /** A function's bundle, as Lambda code. */
  functionCode(name: FunctionName): lambda.Code;
}

/** The package's root, where package.json is: two levels up from dist/lib/infra/ in the compiled
 * package, one from infra/ in the sources. */
export const PACKAGE_ROOT = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '..' : '../../..', import.meta.url));

/** Where the package build writes the bundles. */
export const PACKAGED_ASSETS = join(PACKAGE_ROOT, 'dist/assets');

/** The bundles the package ships (dist/assets), the default of every PgkeepEnvironment. */
export function packagedAssets(directory: string = PACKAGED_ASSETS): PgkeepAssets {
  const taskContext = join(directory, 'task');
  if (!existsSync(join(taskContext, 'Dockerfile'))) {
    throw new Error(
      `pgkeep's packaged assets are missing (${taskContext}/Dockerfile): this copy of the package was not built. Run \`npm run build\` in it; inside pgkeep's own repository, the standalone app and the tests use sourceAssets() (infra/source-assets.ts) instead.`,
    );
  }
  return {
    taskImage: () => ecs.ContainerImage.fromAsset(taskContext, { platform: Platform.LINUX_ARM64 }),
    functionCode: (name) => lambda.Code.fromAsset(join(directory, 'functions', name)),
  };
}
