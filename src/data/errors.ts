/** Errors of the data readers and splits: the file and line (or the split) and what to do about it. */

/** A data file (or in-memory data) that cannot be read as asked: names the place (`file:line`), the value and the fix. */
export class DataFormatError extends Error {
  override readonly name = "DataFormatError";

  constructor(
    /** `file:line`, or the name of the data when it did not come from a file. */
    readonly where: string,
    message: string,
  ) {
    super(`${where}: ${message}`);
  }
}

/** A split that cannot give every part the share asked for (too few documents, too few examples). */
export class DataSplitError extends Error {
  override readonly name = "DataSplitError";
}
