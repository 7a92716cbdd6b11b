import { fileURLToPath } from 'node:url';

/** The repository root: the Docker build context of the task image (task/ imports catalog/ and runtime/). */
export const REPOSITORY_ROOT = fileURLToPath(new URL('..', import.meta.url));
