// Opens a giga viewer page in headless Debian Chromium, waits until
// OpenSeadragon has drawn every tile it wants, screenshots the home view and
// a zoomed-in view near the image's bottom-left corner, and prints where the image
// sits on screen (CSS pixels = device pixels here) as JSON.
//   node view.mjs URL OUT_PREFIX
import { chromium } from "playwright-core";

const [url, prefix] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
const page = await browser.newPage({ viewport: { width: 800, height: 600 }, deviceScaleFactor: 1 });
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
page.on("requestfailed", (r) => errors.push("failed " + r.url()));
page.on("response", (r) => { if (r.status() >= 400) errors.push(r.status() + " " + r.url()); });
await page.goto(url);

// Resolves once the first item is fully loaded (or at once if it already is).
const settle = () => page.evaluate(() => new Promise((resolve, reject) => {
  const v = window.viewer;
  const timer = setTimeout(() => reject(new Error("not fully loaded after 20 s")), 20000);
  const check = () => {
    const item = v.world.getItemAt(0);
    if (item && item.getFullyLoaded()) {
      clearTimeout(timer);
      // One more frame so the last tiles are painted.
      requestAnimationFrame(() => requestAnimationFrame(() => resolve()));
      return true;
    }
    return false;
  };
  if (check()) return;
  v.world.addHandler("add-item", (e) => e.item.addHandler("fully-loaded-change", check));
  const item = v.world.getItemAt(0);
  if (item) item.addHandler("fully-loaded-change", check);
  v.addHandler("open-failed", (e) => { clearTimeout(timer); reject(new Error("open-failed: " + e.message)); });
}));

const rect = () => page.evaluate(() => {
  const v = window.viewer, item = v.world.getItemAt(0);
  const size = item.getContentSize();
  const a = item.imageToViewerElementCoordinates(new OpenSeadragon.Point(0, 0));
  const b = item.imageToViewerElementCoordinates(new OpenSeadragon.Point(size.x, size.y));
  return { x: a.x, y: a.y, w: b.x - a.x, h: b.y - a.y, imageWidth: size.x, imageHeight: size.y };
});

await page.waitForFunction(() => window.viewer && window.viewer.world.getItemCount() > 0, null, { timeout: 20000 });
await settle();
const home = await rect();
await page.screenshot({ path: prefix + "-home.png" });
// A preview's overlays (index.html made with --overlay): where they sit and what they hold.
const overlay = await page.evaluate(() => {
  const svg = document.getElementById("giga-overlay");
  if (!svg) return null;
  const r = svg.getBoundingClientRect();
  return { x: r.x, y: r.y, w: r.width, h: r.height, polylines: svg.querySelectorAll("polyline").length, texts: svg.querySelectorAll("text").length };
});

// Zoom on the bottom-left corner: a window an eighth of the image's size, set in
// by a tenth of the image so that it holds detail, not the transparent border.
await page.evaluate(() => {
  const v = window.viewer, item = v.world.getItemAt(0);
  const size = item.getContentSize();
  const r = item.imageToViewportRectangle(size.x / 10, size.y * 0.72, size.x / 8, size.y / 8);
  v.viewport.fitBounds(r, true);
});
await settle();
const zoomed = await rect();
await page.screenshot({ path: prefix + "-zoomed.png" });
const version = await page.evaluate(() => OpenSeadragon.version.versionStr);
// The view in the URL (#x,y,zoom), and for a PMTiles archive every range it fetched.
await page.waitForFunction(() => location.hash.split(",").length === 3, null, { timeout: 5000 }).catch(() => {});
const hash = await page.evaluate(() => location.hash);
const ranges = await page.evaluate(() => {
  const s = window.viewer.world.getItemAt(0).source;
  return s.archive ? s.archive.log : null;
});
const message = await page.evaluate(() => (document.getElementById("giga-error") || {}).textContent || null);
console.log(JSON.stringify({ home, zoomed, version, errors, hash, ranges, message, overlay }));
await browser.close();
