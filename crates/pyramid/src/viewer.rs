//! The viewer page: `index.html` with the tile source inline (so it also
//! works when opened from a local folder, where the browser forbids
//! fetching a description file) and OpenSeadragon copied beside it.

use std::path::Path;

use raster::{Color, Error, Result};

use crate::assets::{FILES, OSD_VERSION, PMTILES_JS};
use crate::layout::{Kind, Layout};
use crate::tiles::write_atomic;

pub fn write(outdir: &Path, layout: &Layout, background: Color, archive: bool) -> Result<()> {
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
        page(layout, background, archive).as_bytes(),
    )
}

fn css_color(c: Color) -> String {
    let [r, g, b] = c.0.map(|v| (v * 255.0 + 0.5) as u8);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// The HTML page for `layout` (read from its PMTiles archive with `archive`).
pub fn page(layout: &Layout, background: Color, archive: bool) -> String {
    // "</" never appears raw inside a script element.
    let json = |v: &serde_json::Value| {
        serde_json::to_string_pretty(v)
            .expect("json")
            .replace("</", "<\\/")
    };
    let (reader, source) = if archive {
        (
            "\n  <script src=\"openseadragon/giga-pmtiles.js\"></script>",
            format!(
                "gigaPmtilesSource({}, {}, {})",
                json(&serde_json::Value::from(layout.archive_name())),
                layout.width,
                layout.height
            ),
        )
    } else {
        ("", json(&layout.viewer_source_json()))
    };
    let custom = if layout.kind == Kind::Custom && !archive {
        "source.getTileUrl = function (level, x, y) {\n      return source.template.replace('{z}', level).replace('{x}', x).replace('{y}', y);\n    };\n    "
    } else {
        ""
    };
    let title = html_escape(&layout.name);
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
    }});
  </script>
</body>
</html>
"##,
        bg = css_color(background),
    )
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
