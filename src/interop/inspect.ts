export async function inspectCheckpoint(path: string): Promise<unknown> {
  throw new Error(`not yet: ${path}`);
}
