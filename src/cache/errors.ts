/** Errors of the teacher-output cache that callers act on: a folder filled for something else, a write that failed. */

export class CacheMismatchError extends Error {
  override readonly name = "CacheMismatchError";

  constructor(
    readonly dir: string,
    readonly changes: readonly string[],
  ) {
    super(
      `Teacher cache ${dir} was filled for other settings: ${changes.join("; ")}. ` +
        "Pass rebuild: true to discard it and fill it again, or use another directory.",
    );
  }
}

/** What to do when the disk tier cannot be written: raise CacheWriteError, or warn once and go on without it. */
export type CacheWriteErrorPolicy = "raise" | "continue";

export const CACHE_WRITE_ERROR_POLICIES: readonly CacheWriteErrorPolicy[] = ["raise", "continue"];

const CAUSES: Record<string, string> = {
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EROFS: "read-only file system",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EIO: "input/output error",
  EFBIG: "file too large",
};

/**
 * A file of the cache folder could not be written. Records written before it stay readable: the data file is cut
 * back to its last whole record and no temporary file is left.
 */
export class CacheWriteError extends Error {
  override readonly name = "CacheWriteError";
  /** The system error code (ENOSPC, EROFS…), when there is one. */
  readonly code: string | undefined;
  /** The cause in words, e.g. "no space left on device (ENOSPC)". */
  readonly reason: string;

  constructor(
    readonly dir: string,
    readonly file: string,
    cause: unknown,
  ) {
    const code = (cause as NodeJS.ErrnoException | null)?.code;
    const what = code !== undefined && code in CAUSES ? `${CAUSES[code]} (${code})` : String((cause as Error)?.message ?? cause);
    super(
      `Teacher cache ${dir}: cannot write ${file}: ${what}. Free space there or give the cache another dir; ` +
        'onWriteError: "continue" trains on without writing the cache.',
      { cause },
    );
    this.code = code;
    this.reason = what;
  }
}

/** Runs a write of `file` in the cache folder `dir`, turning a failure into CacheWriteError. */
export async function writingCacheFile<T>(dir: string, file: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (err instanceof CacheWriteError || err instanceof RangeError || err instanceof TypeError) throw err;
    throw new CacheWriteError(dir, file, err);
  }
}
