/**
 * CRC-32 (the zlib/PNG polynomial) for the disk cache's checksums. Node's zlib.crc32 (native, fast) exists from
 * Node 20.15 and 22.2; on older Node 20 releases, which package.json's engines accepts, a table-driven version
 * computes the same values. A named import of zlib.crc32 would fail there when the module is linked.
 */
import * as zlib from "node:zlib";

export type Crc32 = (data: Uint8Array, value?: number) => number;

let table: Uint32Array | undefined;

function crcTable(): Uint32Array {
  if (table) return table;
  table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

/** CRC-32 of `data`, continuing from `value` (the CRC of the bytes before it), as zlib.crc32 computes it. */
export function crc32Table(data: Uint8Array, value = 0): number {
  const t = crcTable();
  let c = ~value >>> 0;
  for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** zlib.crc32 where Node has it, else crc32Table. */
export const crc32: Crc32 = (zlib as { crc32?: Crc32 }).crc32 ?? crc32Table;
