/**
 * Bundles the task into one ESM file (dist/task/main.mjs): what the container runs, and what the
 * benchmark measures. `npm run build:task`; task/Dockerfile runs it in its build stage.
 */
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

export const TASK_BUNDLE = fileURLToPath(new URL('../dist/task/main.mjs', import.meta.url));

/** `outfile` elsewhere than dist/ gives a caller its own copy that a concurrent build cannot rewrite under it. */
export async function buildTaskBundle(outfile: string = TASK_BUNDLE): Promise<string> {
  await build({
    entryPoints: [fileURLToPath(new URL('./main.ts', import.meta.url))],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'esm',
    sourcemap: true,
    // The ES module builds where packages ship both (the AWS SDK does): esbuild can drop what the
    // task never calls from them, where the CommonJS builds come whole. Measured: a 2.25 MB bundle
    // instead of 2.76 MB, and 20-30 ms less to start the task.
    mainFields: ['module', 'main'],
    // pg's optional native binding is never used; some CommonJS dependencies call require().
    external: ['pg-native'],
    banner: { js: "import { createRequire as __pgkeepCreateRequire } from 'node:module'; const require = __pgkeepCreateRequire(import.meta.url);" },
    logLevel: 'warning',
  });
  return outfile;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.stdout.write(`built ${await buildTaskBundle()}\n`);
}
