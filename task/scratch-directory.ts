import { mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackupFailure } from './errors.ts';

/** Why a directory cannot be created: the parent is missing, read-only, or not the task user's to write. */
const NOT_WRITABLE = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOENT']);

/**
 * A new private directory under `parentDir` (default TMPDIR: /tmp in the container, the task's
 * only writable path), for the parallel restore's download or the drill's throwaway PostgreSQL.
 *
 * A parent the task's user cannot write is a deployment mistake, so it is told as one, with what
 * the parent is and how to fix it. On Fargate it is what an image without VOLUME ["/tmp"] gets: ECS
 * mounts the empty task volume owned by root with mode 0755 (docs/infrastructure.md).
 */
export async function makeScratchDirectory(prefix: string, purpose: string, options: { parentDir?: string; alternative?: string } = {}): Promise<string> {
  const parentDir = options.parentDir ?? tmpdir();
  try {
    return await mkdtemp(join(parentDir, prefix));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    if (!NOT_WRITABLE.has(code)) throw error;
    throw new BackupFailure(
      'restore',
      `Cannot create ${purpose} in ${parentDir} (${code}): ${await describeDirectory(parentDir, code)}, and the task runs as uid ${process.getuid?.() ?? 'unknown'}.`,
      `Make ${parentDir} writable by the task's user. On ECS, the image must declare VOLUME ["/tmp"] with /tmp at mode 1777 set before that line, as the pgkeep image (task/Dockerfile) does; otherwise ECS mounts the task volume at /tmp owned by root with mode 0755. ` +
        `Elsewhere, set TMPDIR to a writable directory.${options.alternative ? ` ${options.alternative}` : ''}`,
      { cause: error },
    );
  }
}

async function describeDirectory(directory: string, code: string): Promise<string> {
  if (code === 'EROFS') return `${directory} is on a read-only filesystem`;
  try {
    const info = await stat(directory);
    return `${directory} has mode ${(info.mode & 0o7777).toString(8)} and belongs to uid ${info.uid}`;
  } catch {
    return `${directory} does not exist`;
  }
}
