// Types for the parts of proper-lockfile 4 that Grantpool uses (the package ships none).
declare module 'proper-lockfile' {
  interface RetryOptions {
    retries?: number;
    factor?: number;
    minTimeout?: number;
    maxTimeout?: number;
    randomize?: boolean;
  }
  interface LockOptions {
    stale?: number;
    update?: number;
    retries?: number | RetryOptions;
    realpath?: boolean;
    /** A node:fs-compatible callback API (mkdir, rmdir, rmdirSync, stat, utimes, realpath). */
    fs?: unknown;
    onCompromised?: (err: Error) => void;
    lockfilePath?: string;
  }
  function lock(file: string, options?: LockOptions): Promise<() => Promise<void>>;
  function unlock(file: string, options?: LockOptions): Promise<void>;
  function check(file: string, options?: LockOptions): Promise<boolean>;
  const lockfile: {
    lock: typeof lock;
    unlock: typeof unlock;
    check: typeof check;
  };
  export default lockfile;
}
