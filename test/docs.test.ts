import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../catalog/exit-codes.ts';
import { parseManifest } from '../catalog/manifest.ts';
import { BACKUP_SETTINGS, DRILL_SETTINGS, RESTORE_SETTINGS } from '../catalog/task-settings.ts';

const read = (path: string): string => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');

describe('the documentation stays true to the code', () => {
  it('lists every setting the backup, restore and drill commands read in the README tables', () => {
    const readme = read('README.md');

    const undocumented = [...Object.keys(BACKUP_SETTINGS), ...Object.keys(RESTORE_SETTINGS), ...Object.keys(DRILL_SETTINGS)].filter(
      (name) => !readme.includes(`| \`${name}\` |`),
    );

    expect(undocumented).toEqual([]);
  });

  it('explains every exit code in the README exactly as catalog/exit-codes.ts does, and no other', () => {
    const readme = read('README.md');
    const table = readme.slice(readme.indexOf('| exit code | meaning | what to do |')).split('\n\n')[0] ?? '';
    const rows = table
      .split('\n')
      .slice(2)
      .map((line) => line.split(' | ').map((cell) => cell.replace(/^\| ?| ?\|$/g, '')));

    expect(rows).toEqual(EXIT_CODES.map(({ code, meaning, whatToDo }) => [String(code), meaning, whatToDo]));
  });

  it('names only exit codes the task has (or 137, the kernel killing it) anywhere in the README and docs/', () => {
    const known = new Set<number>([...EXIT_CODES.map(({ code }) => code), 137]);
    const documents = [
      'README.md',
      ...readdirSync(new URL('../docs/', import.meta.url))
        .filter((name) => name.endsWith('.md'))
        .map((name) => `docs/${name}`),
    ];
    const unknown = documents.flatMap((path) =>
      [...read(path).matchAll(/\bexit(?:s|ed with)?(?: code)? (\d+)\b/gi)]
        .filter((match) => !known.has(Number(match[1])))
        .map((match) => `${path}: ${match[0]}`),
    );

    expect(unknown).toEqual([]);
  });

  it('shows an example manifest in docs/catalog.md that the manifest schema accepts', () => {
    const example = /```json\n([\s\S]*?)\n```/.exec(read('docs/catalog.md'))?.[1];

    expect(example).toBeDefined();
    expect(() => parseManifest(example ?? '', 'docs/catalog.md example')).not.toThrow();
  });

  it('gives npm test as the way to run the tests', () => {
    expect(read('README.md')).toContain('npm test');
    expect(read('.ci/run')).toMatch(/^npm test$/m);
  });
});
