/**
 * Compares two synthesized cloud assemblies (`cdk synth -o <dir>`) stack by stack, nested stacks
 * included, and prints what a deployment of the second would change against the first: resources,
 * outputs and parameters added, removed or changed, and stack tags. For refactorings that must not
 * change what is deployed:
 *
 *   npx tsx dev/compare-assemblies.ts <before> <after>
 *
 * Stacks are matched by their CloudFormation names, nested stacks by their logical ids, so moving a
 * stack in the construct tree (which renames its template file) is not itself a change. What CDK
 * derives from construct paths alone is normalized away: asset hashes, and the path part of
 * generated names (see normalize).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
interface Template {
  Resources?: Record<string, { Type: string; Metadata?: Record<string, Json>; [key: string]: Json | undefined }>;
  Outputs?: Record<string, Json>;
  Parameters?: Record<string, Json>;
}
interface StackArtifact {
  template: Template;
  tags: Record<string, string> | undefined;
  /** The top-level stack's construct path as CDK writes it into generated names (letters and digits only). */
  pathPrefix: string;
}

interface AssemblyManifest {
  artifacts: Record<
    string,
    { type: string; displayName?: string; properties?: { stackName?: string; templateFile?: string; tags?: Record<string, string>; file?: string } }
  >;
}

function stacksOf(directory: string): Map<string, StackArtifact> {
  const manifest = JSON.parse(readFileSync(join(directory, 'manifest.json'), 'utf8')) as AssemblyManifest;
  const stacks = new Map<string, StackArtifact>();
  for (const [id, artifact] of Object.entries(manifest.artifacts)) {
    if (artifact.type !== 'aws:cloudformation:stack' || !artifact.properties?.templateFile) continue;
    const name = artifact.properties.stackName ?? id;
    const template = JSON.parse(readFileSync(join(directory, artifact.properties.templateFile), 'utf8')) as Template;
    const pathPrefix = (artifact.displayName ?? id).replace(/[^A-Za-z0-9]/g, '');
    stacks.set(name, { template, tags: artifact.properties.tags, pathPrefix });
    for (const [logicalId, resource] of Object.entries(template.Resources ?? {})) {
      if (resource.Type !== 'AWS::CloudFormation::Stack') continue;
      // `cdk synth` records the nested template's file in the resource's metadata; an assembly
      // synthesized in-process (no asset metadata) names it in its asset manifest, by the hash in TemplateURL.
      const path = resource.Metadata?.['aws:asset:path'] ?? nestedTemplateFile(directory, manifest, id, JSON.stringify(resource.Properties ?? {}));
      if (typeof path === 'string') {
        stacks.set(`${name}/${logicalId}`, { template: JSON.parse(readFileSync(join(directory, path), 'utf8')) as Template, tags: undefined, pathPrefix });
      }
    }
  }
  return stacks;
}

function nestedTemplateFile(directory: string, manifest: AssemblyManifest, stackId: string, properties: string): string | undefined {
  const hash = /([0-9a-f]{64})\.json/.exec(properties)?.[1];
  const assets = manifest.artifacts[`${stackId}.assets`]?.properties?.file;
  if (!hash || !assets) return undefined;
  const files = (JSON.parse(readFileSync(join(directory, assets), 'utf8')) as { files?: Record<string, { source: { path?: string } }> }).files ?? {};
  return files[hash]?.source.path;
}

/**
 * Names CDK builds from construct paths: the parameters and outputs that wire a nested stack to its
 * parent (`referenceto<path><id><hash>Arn`), and logical ids that embed another construct's path.
 * The path part and the 8-character hash that follows it become `<path>`; the rest of the name
 * stays, so a logical id that really changes (its own trailing hash) is still reported.
 */
function normalize(template: Json, pathPrefix: string): Json {
  const pathPart = new RegExp(`${pathPrefix}([A-Za-z0-9]*?)[0-9A-F]{8}`, 'g');
  const rename = (text: string) => text.replace(pathPart, '<path>$1');
  const walk = (value: Json): Json => {
    if (Array.isArray(value)) return value.map(walk);
    if (value !== null && typeof value === 'object') {
      const entries = Object.entries(value)
        .filter(([key]) => key !== 'aws:cdk:path' && key !== 'aws:asset:path' && key !== 'aws:asset:is-bundled')
        .map(([key, inner]) => [rename(key), walk(inner)] as const);
      return Object.fromEntries(entries);
    }
    if (typeof value === 'string') return rename(value).replace(/[0-9a-f]{64}/g, '<asset hash>');
    return value;
  };
  return walk(template);
}

function compare(before: Map<string, StackArtifact>, after: Map<string, StackArtifact>): string[] {
  const lines: string[] = [];
  for (const name of [...new Set([...before.keys(), ...after.keys()])].sort()) {
    const [old, now] = [before.get(name), after.get(name)];
    if (!old || !now) {
      lines.push(`${name}: stack ${old ? 'removed' : 'added'}`);
      continue;
    }
    if (!isDeepStrictEqual(old.tags ?? {}, now.tags ?? {}))
      lines.push(`${name}: stack tags ${JSON.stringify(old.tags ?? {})} -> ${JSON.stringify(now.tags ?? {})}`);
    const [a, b] = [normalize(old.template as Json, old.pathPrefix) as Template, normalize(now.template as Json, now.pathPrefix) as Template];
    // CDK's own record of the construct library versions and paths, not deployed configuration.
    for (const template of [a, b]) delete template.Resources?.CDKMetadata;
    for (const section of ['Resources', 'Outputs', 'Parameters'] as const) {
      const [x, y] = [a[section] ?? {}, b[section] ?? {}];
      for (const key of [...new Set([...Object.keys(x), ...Object.keys(y)])].sort()) {
        if (!(key in y)) lines.push(`${name}: ${section} ${key} removed`);
        else if (!(key in x)) lines.push(`${name}: ${section} ${key} added`);
        else if (!isDeepStrictEqual(x[key], y[key])) lines.push(`${name}: ${section} ${key} changed`);
      }
    }
  }
  return lines;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const [beforeDirectory, afterDirectory] = process.argv.slice(2);
  if (!beforeDirectory || !afterDirectory) {
    console.error('usage: npx tsx dev/compare-assemblies.ts <before cloud assembly> <after cloud assembly>');
    process.exit(2);
  }
  const lines = compare(stacksOf(beforeDirectory), stacksOf(afterDirectory));
  console.log(lines.length === 0 ? 'no difference (asset hashes and path-derived wiring names aside)' : lines.join('\n'));
}

export { compare, stacksOf };
