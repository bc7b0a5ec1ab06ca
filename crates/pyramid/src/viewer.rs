//! The viewer page: `index.html` with the tile source inline (so it also
//! works when opened from a local folder, where the browser forbids
//! fetching a description file) and OpenSeadragon copied beside it.

use std::path::Path;

use raster::{Color, Error, Result};

use crate::assets::{FILES, OSD_VERSION, PMTILES_JS};
use crate::layout::{Kind, Layout};
use crate::tiles::write_atomic;

/// Writes `index.html` and OpenSeadragon (and the PMTiles reader for an archive) into OUTDIR.
pub fn write(
    outdir: &Path,
    layout: &Layout,
    background: Color,
    archive: bool,
    overlay: Option<&serde_json::Value>,
) -> Result<()> {
    let reader = [("giga-pmtiles.js", PMTILES_JS)];
    let extra: &[(&str, &[u8])] = if archive { &reader } else { &[] };
    for (rel, bytes) in FILES.iter().chain(extra) {
        let path = outdir.join("openseadragon").join(rel);
        if std::fs::read(&path).is_ok_and(|b| b == *bytes) {
            continue;
        }
        let dir = path.parent().unwrap();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        write_atomic(&path, bytes)?;
    }
    write_atomic(
        &outdir.join("index.html"),
        page(layout, background, archive, overlay).as_bytes(),
    )
}

fn css_color(c: Color) -> String {
    let [r, g, b] = c.0.map(|v| (v * 255.0 + 0.5) as u8);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// The HTML page for `layout` (read from its PMTiles archive with `archive`), with
/// `overlay` (a `giga preview` sidecar) drawn over the image.
pub fn page(
    layout: &Layout,
    background: Color,
    archive: bool,
    overlay: Option<&serde_json::Value>,
) -> String {
    let (reader, source, custom) = tile_source(layout, archive);
    let title = html_escape(&layout.name);
    let overlay = overlay.map_or(String::new(), |o| {
        OVERLAY_JS.replace("OVERLAY", &script_json(o))
    });
    format!(
        r##"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="generator" content="giga">
  <title>{title}</title>
  <style>
    html, body {{ margin: 0; height: 100%; background: {bg}; }}
    #viewer {{ width: 100%; height: 100%; }}
  </style>
</head>
<body>
  <div id="viewer"></div>
  <!-- OpenSeadragon {OSD_VERSION}, copied beside this page by giga (BSD-3-Clause). -->
  <script src="openseadragon/openseadragon.min.js"></script>{reader}
  <script>
    if (OpenSeadragon.version.versionStr !== "{OSD_VERSION}") {{
      console.warn("this page was made for OpenSeadragon {OSD_VERSION}, found " + OpenSeadragon.version.versionStr);
    }}
    // The tile source is inline, so the page needs no request besides the tiles.
    var source = {source};
    {custom}window.viewer = OpenSeadragon({{
      id: "viewer",
      prefixUrl: "openseadragon/images/",
      tileSources: source,
      showNavigator: true,
      maxZoomPixelRatio: 2
    }});
    // The view in the URL (#x,y,zoom: the centre in image widths, the zoom), so a
    // link opens that spot; keys zoom (+ -) and pan (arrows, w a s d) once the page is open.
    viewer.addHandler("open", function () {{
      var v = location.hash.slice(1).split(",").map(Number);
      if (v.length === 3 && v.every(isFinite) && v[2] > 0) {{
        viewer.viewport.zoomTo(v[2], null, true);
        viewer.viewport.panTo(new OpenSeadragon.Point(v[0], v[1]), true);
      }}
      viewer.canvas.focus();
    }});
    viewer.addHandler("animation-finish", function () {{
      var c = viewer.viewport.getCenter(), z = viewer.viewport.getZoom();
      history.replaceState(null, "", "#" + [c.x.toFixed(5), c.y.toFixed(5), z.toFixed(4)].join(","));
    }});{overlay}
  </script>
</body>
</html>
"##,
        bg = css_color(background),
    )
}

/// JSON to put inside a script element ("</" never appears raw there).
fn script_json(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v)
        .expect("json")
        .replace("</", "<\\/")
}

/// The page's tile source: the script it needs first (the PMTiles reader for an archive),
/// the source itself, and the custom layout's getTileUrl.
fn tile_source(layout: &Layout, archive: bool) -> (&'static str, String, &'static str) {
    if archive {
        let url = script_json(&serde_json::Value::from(layout.archive_name()));
        let source = format!(
            "gigaPmtilesSource({url}, {}, {})",
            layout.width, layout.height
        );
        return (
            "\n  <script src=\"openseadragon/giga-pmtiles.js\"></script>",
            source,
            "",
        );
    }
    let custom = if layout.kind == Kind::Custom {
        "source.getTileUrl = function (level, x, y) {\n      return source.template.replace('{z}', level).replace('{x}', x).replace('{y}', y);\n    };\n    "
    } else {
        ""
    };
    ("", script_json(&layout.viewer_source_json()), custom)
}

/// Draws a `giga preview` sidecar over the image as SVG (image pixels), toggled with `o`.
const OVERLAY_JS: &str = r##"
    // Overlays from giga preview --sidecar: frame outlines, numbers, seams, control points.
    (function (o) {
      var ns = "http://www.w3.org/2000/svg", svg = document.createElementNS(ns, "svg");
      svg.setAttribute("id", "giga-overlay");
      svg.setAttribute("viewBox", "0 0 " + o.width + " " + o.height);
      svg.setAttribute("preserveAspectRatio", "none");
      svg.style.pointerEvents = "none";
      function add(tag, attrs) {
        var e = document.createElementNS(ns, tag);
        for (var k in attrs) e.setAttribute(k, attrs[k]);
        e.setAttribute("vector-effect", "non-scaling-stroke");
        svg.appendChild(e);
        return e;
      }
      var seams = (o.seams || []).map(function (s) { return "M" + s[0] + "L" + s[1]; }).join("");
      if (seams) add("path", { d: seams, stroke: "#ff00ff", "stroke-width": 1.5, fill: "none" });
      o.frames.forEach(function (f) {
        f.outline.forEach(function (piece) {
          add("polyline", { points: piece.map(function (p) { return p.join(","); }).join(" "), stroke: f.colour, "stroke-width": 2, fill: "none" });
        });
        if (f.centre) {
          var t = add("text", { x: f.centre[0], y: f.centre[1], "font-size": Math.max(o.width, o.height) / 60, "text-anchor": "middle", "dominant-baseline": "middle", fill: "#fff", stroke: "#000", "stroke-width": 3, "paint-order": "stroke", "font-family": "sans-serif" });
          t.textContent = f.frame;
        }
      });
      var dot = Math.max(o.width, o.height) / 800;
      o.points.forEach(function (p) {
        var c = p.residual < 1 ? "#28dc3c" : p.residual < 3 ? "#fad228" : "#f02828";
        var dx = p.b[0] - p.a[0], dy = p.b[1] - p.a[1], d = Math.max(Math.hypot(dx, dy), 1e-9), reach = Math.min(p.residual * 10, 200) * dot;
        add("line", { x1: p.a[0], y1: p.a[1], x2: p.a[0] + dx / d * reach, y2: p.a[1] + dy / d * reach, stroke: c, "stroke-width": 2 });
        add("circle", { cx: p.a[0], cy: p.a[1], r: dot * 2, fill: c, stroke: "#000", "stroke-width": 1 });
      });
      viewer.addHandler("open", function () {
        viewer.addOverlay({ element: svg, location: new OpenSeadragon.Rect(0, 0, 1, o.height / o.width) });
      });
      document.addEventListener("keydown", function (e) {
        if (e.key === "o") svg.style.display = svg.style.display === "none" ? "" : "none";
      });
      window.gigaOverlay = svg;
    })(OVERLAY);"##;

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
