// giga: an OpenSeadragon tile source that reads a PMTiles v3 archive with HTTP
// Range requests (header and root directory in the first 16 KB, leaf
// directories on demand, cached). Written for giga's xyz archives: OpenSeadragon
// level L is zoom L - 8, as in its openstreetmaps source. Needs a server that
// honours Range (a 200 reply with the whole file is refused with a message).
(function () {
  "use strict";

  function readVarint(view, pos) {
    let value = 0, shift = 1, byte;
    do {
      byte = view.getUint8(pos.i++);
      value += (byte & 0x7f) * shift;
      shift *= 128;
    } while (byte & 0x80);
    return value;
  }

  // Tile ID of (z, x, y): the tiles of the zooms above, then the Hilbert index.
  function tileId(z, x, y) {
    let acc = 0;
    for (let k = 0; k < z; k++) acc += Math.pow(4, k);
    let d = 0;
    for (let s = Math.pow(2, z) / 2; s >= 1; s /= 2) {
      const rx = (x & s) > 0 ? 1 : 0, ry = (y & s) > 0 ? 1 : 0;
      d += s * s * ((3 * rx) ^ ry);
      if (ry === 0) {
        if (rx === 1) { x = s - 1 - (x & (s - 1)); y = s - 1 - (y & (s - 1)); }
        const t = x; x = y; y = t;
      }
    }
    return acc + d;
  }

  async function gunzip(bytes) {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  async function parseDirectory(bytes) {
    const raw = await gunzip(bytes);
    const view = new DataView(raw.buffer), pos = { i: 0 };
    const n = readVarint(view, pos), entries = new Array(n);
    let last = 0;
    for (let i = 0; i < n; i++) { last += readVarint(view, pos); entries[i] = { id: last }; }
    for (let i = 0; i < n; i++) entries[i].run = readVarint(view, pos);
    for (let i = 0; i < n; i++) entries[i].length = readVarint(view, pos);
    for (let i = 0; i < n; i++) {
      const v = readVarint(view, pos);
      entries[i].offset = (v === 0 && i > 0) ? entries[i - 1].offset + entries[i - 1].length : v - 1;
    }
    return entries;
  }

  // The entry covering `id`: the last one starting at or before it.
  function find(entries, id) {
    let lo = 0, hi = entries.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (entries[mid].id <= id) lo = mid + 1; else hi = mid - 1;
    }
    const e = entries[hi];
    if (!e) return null;
    if (e.run === 0 || id - e.id < e.run) return e;
    return null;
  }

  function Archive(url) {
    this.url = url;
    this.log = []; // every range fetched: [offset, length, what]
    this.leaves = new Map();
    this.ready = this.range(0, 16384, "header").then(async (first) => {
      const v = new DataView(first.buffer, first.byteOffset);
      const text = new TextDecoder().decode(first.subarray(0, 7));
      if (text !== "PMTiles" || v.getUint8(7) !== 3) throw new Error(url + ": not a PMTiles v3 archive");
      const u64 = (at) => v.getUint32(at, true) + v.getUint32(at + 4, true) * 4294967296;
      this.header = {
        rootOffset: u64(8), rootLength: u64(16), leafOffset: u64(40), dataOffset: u64(56),
        compression: v.getUint8(97), tileType: v.getUint8(99),
      };
      if (this.header.compression !== 2) throw new Error(url + ": directories are not gzip-compressed");
      const h = this.header;
      const root = h.rootOffset + h.rootLength <= first.length
        ? first.subarray(h.rootOffset, h.rootOffset + h.rootLength)
        : await this.range(h.rootOffset, h.rootLength, "root");
      this.root = await parseDirectory(root);
    });
  }

  Archive.prototype.range = async function (offset, length, what) {
    this.log.push([offset, length, what]);
    const r = await fetch(this.url, { headers: { Range: "bytes=" + offset + "-" + (offset + length - 1) } });
    if (r.status === 200) throw new Error(this.url + ": the server ignores Range requests; serve the archive from one that honours them");
    if (r.status !== 206) throw new Error(this.url + ": HTTP " + r.status);
    return new Uint8Array(await r.arrayBuffer());
  };

  // The tile's bytes, or null when the archive has none there (a blank tile left out).
  Archive.prototype.tile = async function (z, x, y) {
    await this.ready;
    const id = tileId(z, x, y);
    let dir = this.root;
    for (let depth = 0; depth < 4; depth++) {
      const e = find(dir, id);
      if (!e) return null;
      if (e.run > 0) return this.range(this.header.dataOffset + e.offset, e.length, "tile");
      const key = e.offset;
      if (!this.leaves.has(key)) {
        this.leaves.set(key, this.range(this.header.leafOffset + e.offset, e.length, "leaf").then(parseDirectory));
      }
      dir = await this.leaves.get(key);
    }
    return null;
  };

  const TYPES = { 2: "image/png", 3: "image/jpeg", 4: "image/webp" };
  // A 1x1 transparent PNG for tiles the archive leaves out.
  const BLANK = Uint8Array.from(atob("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="), (c) => c.charCodeAt(0));

  // An OpenSeadragon tile source for archive `url` of an image `width` x `height`.
  window.gigaPmtilesSource = function (url, width, height) {
    const archive = new Archive(url);
    // A page that can't read its archive says why, on the page.
    archive.ready.catch((e) => {
      const p = document.createElement("p");
      p.id = "giga-error";
      p.style.cssText = "position:absolute;top:40%;width:100%;text-align:center;font:16px sans-serif;color:#a00";
      p.textContent = String(e.message || e);
      document.body.appendChild(p);
    });
    const source = new OpenSeadragon.TileSource({
      width: width, height: height, tileSize: 256, tileOverlap: 0, minLevel: 8,
      maxLevel: Math.ceil(Math.log2(Math.max(width, height))),
    });
    source.archive = archive;
    source.getTileUrl = function (level, x, y) { return url + "#" + (level - 8) + "/" + x + "/" + y; };
    source.downloadTileStart = function (context) {
      const [z, x, y] = context.src.split("#").pop().split("/").map(Number);
      archive.tile(z, x, y).then((bytes) => {
        const type = bytes ? TYPES[archive.header.tileType] || "" : "image/png";
        context.finish(new Blob([bytes || BLANK], { type: type }), null, "rasterBlob");
      }).catch((e) => { console.error(e); context.fail(String(e), null); });
    };
    source.downloadTileAbort = function () {};
    return source;
  };
  window.gigaPmtiles = { tileId: tileId, Archive: Archive };
})();
