/**
 * `node --import tsx --import dev/postgres-as-root-preload.ts <entry>` (and vitest's setupFiles): as
 * root, the process's throwaway PostgreSQL clusters run as the `postgres` user (dev/postgres-as-root.ts).
 */
import { runPostgresAsRootWhenRoot } from './postgres-as-root.ts';

runPostgresAsRootWhenRoot();
