import packageJson from '../package.json' with { type: 'json' };

/** Recorded in every manifest, so a reader knows which pgkeep wrote it. */
export const PGKEEP_VERSION: string = packageJson.version;
