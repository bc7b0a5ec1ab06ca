// Reads a PMTiles archive with the reference JavaScript reader (the `pmtiles`
// npm package, as browsers use it) from a local file or an http:// URL (with its
// own Range requests), and prints its header, metadata and the SHA-256 of each
// tile asked for (null where it has none).
//   node pmtiles-read.mjs ARCHIVE|URL z/x/y ...
import { open } from "node:fs/promises";
import { createHash } from "node:crypto";
import { FetchSource, PMTiles } from "pmtiles";

const [path, ...tiles] = process.argv.slice(2);
const remote = path.startsWith("http");
const file = remote ? null : await open(path, "r");
const source = remote ? new FetchSource(path) : {
  getKey: () => path,
  getBytes: async (offset, length) => {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await file.read(buf, 0, length, offset);
    return { data: buf.buffer.slice(buf.byteOffset, buf.byteOffset + bytesRead) };
  },
};
const archive = new PMTiles(source);
const header = await archive.getHeader();
const metadata = await archive.getMetadata();
const out = {};
for (const t of tiles) {
  const [z, x, y] = t.split("/").map(Number);
  const r = await archive.getZxy(z, x, y);
  out[t] = r ? createHash("sha256").update(Buffer.from(r.data)).digest("hex") : null;
}
console.log(JSON.stringify({ header, metadata, tiles: out }));
if (file) await file.close();
