/**
 * The task image and function bundles built from this repository's sources, for the standalone
 * app (infra/app.ts) and the tests. The construct package ships the same bundles prebuilt
 * (infra/assets.ts, packagedAssets); this module is left out of it, because it needs esbuild, a
 * development dependency, and the sources.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as lambda from 'aws-cdk-lib/aws-lambda';
// The functions' build step, not their runtime code.
import { buildFunctionBundleSync } from '../functions/build.ts';
import type { PgkeepAssets } from './assets.ts';

/** Each function is bundled once per process, whatever the number of synths. */
const built = new Map<string, string>();

export function sourceAssets(repositoryRoot: string): PgkeepAssets {
  return {
    // The repository root is the build context: the task imports catalog/ (.dockerignore says what is sent).
    taskImage: () => ecs.ContainerImage.fromAsset(repositoryRoot, { file: 'task/Dockerfile', platform: Platform.LINUX_ARM64 }),
    functionCode: (name) => {
      const key = `${repositoryRoot}\0${name}`;
      let directory = built.get(key);
      if (!directory) {
        directory = scratchBundleDirectory(repositoryRoot);
        buildFunctionBundleSync(name, directory);
        built.set(key, directory);
      }
      return lambda.Code.fromAsset(directory);
    },
  };
}

/**
 * A directory of this process's own at the same depth as dist/assets/functions/<name> (so the
 * source map's relative paths, and the asset hash, are the packaged bundle's), removed at exit;
 * CDK copies the bundle into the cloud assembly when the construct is created.
 */
function scratchBundleDirectory(repositoryRoot: string): string {
  // Not in dist/: the package build empties that while other synths may be reading from here.
  const parent = join(repositoryRoot, '.pgkeep-local/bundles/functions');
  mkdirSync(parent, { recursive: true });
  const directory = mkdtempSync(join(parent, `.synth-${process.pid}-`));
  process.once('exit', () => rmSync(directory, { recursive: true, force: true }));
  return directory;
}
