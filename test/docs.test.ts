import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseManifest } from '../catalog/manifest.ts';
import { BACKUP_SETTINGS } from '../task/config.ts';
import { DRILL_SETTINGS } from '../task/drill.ts';
import { RESTORE_SETTINGS } from '../task/restore-config.ts';

const read = (path: string): string => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');

describe('the documentation stays true to the code', () => {
  it('lists every setting the backup, restore and drill commands read in the README tables', () => {
    const readme = read('README.md');

    const undocumented = [...Object.keys(BACKUP_SETTINGS), ...Object.keys(RESTORE_SETTINGS), ...Object.keys(DRILL_SETTINGS)].filter((name) => !readme.includes(`| \`${name}\` |`));

    expect(undocumented).toEqual([]);
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
