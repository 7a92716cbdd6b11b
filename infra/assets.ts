/**
 * Where the code pgkeep deploys comes from: the task image and the three functions' bundles.
 *
 * - **Packaged** (the construct package, built by `npm run build`, infra/build-package.ts): the
 *   bundles ship inside it under dist/assets/, so a CDK app that installs pgkeep needs neither
 *   esbuild nor pgkeep's sources, and the task image's Docker build copies a prebuilt bundle
 *   instead of running `npm ci` (a published package carries no package-lock.json to run it from).
 * - **From the sources** (this repository: `cdk synth`, the tests): the functions are bundled at
 *   synth by the same build step (functions/build.ts), and the image is built from the repository
 *   root with task/Dockerfile, whose build stage bundles the task (task/build.ts).
 *
 * Either way a function's bundle is byte for byte the same, so its asset hash is too: the bundle
 * is written at the same depth below the package (dist/assets/functions/<name>), and the only
 * paths in it, the source map's, are relative.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { FunctionName } from '../catalog/function-bundles.ts';
// The functions' build step, not their runtime code: a synth from the sources bundles with it.
import { buildFunctionBundleSync } from '../functions/build.ts';

export interface PgkeepAssets {
  /** The task image, for linux/arm64 (the task definitions' platform). */
  taskImage(): ecs.ContainerImage;
  /** A function's bundle, as Lambda code. */
  functionCode(name: FunctionName): lambda.Code;
}

/** Running from dist/lib/infra/ (the compiled package), not from the TypeScript sources in infra/. */
const BUILT_PACKAGE = !import.meta.url.endsWith('.ts');

/** The package's root: where package.json is. */
export const PACKAGE_ROOT = fileURLToPath(new URL(BUILT_PACKAGE ? '../../..' : '..', import.meta.url));

/** Where the package build writes the bundles. */
export const PACKAGED_ASSETS = join(PACKAGE_ROOT, 'dist/assets');

/** The packaged assets when this is the built package, else the ones built from the sources. */
export function pgkeepAssets(): PgkeepAssets {
  return BUILT_PACKAGE ? packagedAssets(PACKAGED_ASSETS) : sourceAssets(PACKAGE_ROOT);
}

export function packagedAssets(directory: string): PgkeepAssets {
  const taskContext = join(directory, 'task');
  if (!existsSync(join(taskContext, 'Dockerfile'))) {
    throw new Error(`pgkeep's packaged assets are missing (${taskContext}/Dockerfile): the package was not built; run npm run build in it`);
  }
  return {
    taskImage: () => ecs.ContainerImage.fromAsset(taskContext, { platform: Platform.LINUX_ARM64 }),
    functionCode: (name) => lambda.Code.fromAsset(join(directory, 'functions', name)),
  };
}

export function sourceAssets(repositoryRoot: string): PgkeepAssets {
  const built = new Map<FunctionName, string>();
  return {
    // The repository root is the build context: the task imports catalog/ (.dockerignore says what is sent).
    taskImage: () => ecs.ContainerImage.fromAsset(repositoryRoot, { file: 'task/Dockerfile', platform: Platform.LINUX_ARM64 }),
    functionCode: (name) => {
      let directory = built.get(name);
      if (!directory) {
        directory = scratchBundleDirectory(repositoryRoot);
        buildFunctionBundleSync(name, directory);
        built.set(name, directory);
      }
      return lambda.Code.fromAsset(directory);
    },
  };
}

/**
 * A directory of this process's own beside dist/assets/functions/<name>, at the same depth (so the
 * source map's relative paths, and the asset hash, are the packaged bundle's), removed at exit;
 * CDK copies the bundle into the cloud assembly when the construct is created.
 */
function scratchBundleDirectory(repositoryRoot: string): string {
  const parent = join(repositoryRoot, 'dist/assets/functions');
  mkdirSync(parent, { recursive: true });
  const directory = mkdtempSync(join(parent, `.synth-${process.pid}-`));
  process.once('exit', () => rmSync(directory, { recursive: true, force: true }));
  return directory;
}
