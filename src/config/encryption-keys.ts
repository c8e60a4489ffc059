// The keys that encrypt tokens at rest (docs/security.md): the current key from
// GRANTPOOL_ENCRYPTION_KEY (the key itself, base64) or the config key
// `encryption_key_file` (GRANTPOOL_ENCRYPTION_KEY_FILE: a file holding it, e.g.
// a systemd credential or a docker secret), and the old keys accepted for
// reading during a rotation (GRANTPOOL_ENCRYPTION_OLD_KEYS: comma-separated
// keys or @files; config `encryption_old_key_files`). The keys stay here and in
// the store's key ring, never in the configuration object (which is shown).
import { readFile, stat } from 'node:fs/promises';
import { ConfigError, type ResolvedConfig } from './load.ts';
import { userPath } from './user-path.ts';

export interface EncryptionKeys {
  /** The key new writes are encrypted with; null when none is configured. */
  current: Buffer | null;
  /** Keys accepted for reading only. */
  old: Buffer[];
  /** Where the current key came from (for the start log and doctor), never the key. */
  source: string | null;
  /** Worth fixing, not fatal: a key file that others may read. */
  warnings: string[];
}

type Env = Record<string, string | undefined>;

/** A 32-byte key written as base64 (standard or url-safe, padding optional). */
function parseKey(text: string, where: string): Buffer {
  const t = text.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(t)) {
    throw new ConfigError(`${where} is not a base64 key`, { fix: 'make a key with `openssl rand -base64 32` (32 random bytes, base64)' });
  }
  const key = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (key.length !== 32) {
    throw new ConfigError(`${where} holds ${key.length} bytes; an encryption key is 32 bytes (base64)`, { fix: 'make a key with `openssl rand -base64 32`' });
  }
  return key;
}

/** Reads a key file; a file that group or others may read is used, with a warning. */
async function readKeyFile(path: string, where: string, warnings: string[]): Promise<Buffer> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read the encryption key file ${path} (${where}): ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      fix: 'check the path and that this user may read it; without its key Grantpool cannot read the tokens it encrypted',
    });
  }
  const mode = (await stat(path)).mode & 0o777;
  if (mode & 0o077) warnings.push(`the encryption key file ${path} has mode ${mode.toString(8)}: others on this machine may read the key (chmod 600 ${path})`);
  return parseKey(text, `the encryption key file ${path} (${where})`);
}

/** A key given on the command line: the key itself (base64), or @file. */
export async function keyArgument(arg: string, where: string, warnings: string[] = []): Promise<Buffer> {
  if (arg.startsWith('@')) return readKeyFile(userPath(arg.slice(1)), where, warnings);
  return parseKey(arg, where);
}

/** The keys a configuration names (none: tokens are written plain). */
export async function loadEncryptionKeys(config: Pick<ResolvedConfig, 'data_dir' | 'encryption_key_file' | 'encryption_old_key_files'>, env: Env): Promise<EncryptionKeys> {
  const warnings: string[] = [];
  let current: Buffer | null = null;
  let source: string | null = null;
  const fromEnv = env.GRANTPOOL_ENCRYPTION_KEY?.trim();
  if (fromEnv) {
    current = parseKey(fromEnv, 'GRANTPOOL_ENCRYPTION_KEY');
    source = 'GRANTPOOL_ENCRYPTION_KEY';
  } else if (config.encryption_key_file) {
    const path = userPath(config.encryption_key_file, config.data_dir);
    current = await readKeyFile(path, 'encryption_key_file', warnings);
    source = path;
  }
  const old: Buffer[] = [];
  for (const file of config.encryption_old_key_files) old.push(await readKeyFile(userPath(file, config.data_dir), 'encryption_old_key_files', warnings));
  const oldFromEnv = env.GRANTPOOL_ENCRYPTION_OLD_KEYS?.split(',').map((k) => k.trim()).filter(Boolean) ?? [];
  for (const k of oldFromEnv) old.push(await keyArgument(k, 'GRANTPOOL_ENCRYPTION_OLD_KEYS', warnings));
  return { current, old, source, warnings };
}
