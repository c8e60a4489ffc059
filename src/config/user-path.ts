// Paths a user writes in config.json, the environment or on the command line:
// a leading `~` means their home directory (as in a shell), and a relative
// path is taken from a base (the data directory for config keys).
import { homedir } from 'node:os';
import { resolve } from 'node:path';

/**
 * An absolute path: `~` or `~/…` with the home directory put in (`~user/…` is
 * not expanded), then resolved against `base` (default: the working directory).
 */
export function userPath(path: string, base?: string): string {
  const p = path.replace(/^~(?=$|\/)/, () => homedir());
  return base === undefined ? resolve(p) : resolve(base, p);
}
