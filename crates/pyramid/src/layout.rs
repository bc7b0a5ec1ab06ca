//! The layouts: which levels exist, where each tile goes, and the
//! description files, each exactly as OpenSeadragon's tile source for it
//! computes them (see docs/tiles.md for the sources read).

use serde_json::json;

use crate::geometry::{ceil_log2, level_sizes, Grid, Rounding};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// The pyramid layouts OpenSeadragon opens.
pub enum Kind {
    /// Deep Zoom: `NAME.dzi` + `NAME_files/LEVEL/COL_ROW.EXT`.
    Dzi,
    /// IIIF Image API 3, level 0 (static files).
    Iiif3,
    /// IIIF Image API 2.1, level 0.
    Iiif2,
    /// Zoomify: `ImageProperties.xml` + `TileGroupN/L-X-Y.jpg`.
    Zoomify,
    /// XYZ tiles (OpenSeadragon's openstreetmaps source).
    Xyz,
    /// TMS tiles (rows counted from the bottom).
    Tms,
    /// One whole image a level.
    Legacy,
    /// A path template of the user's.
    Custom,
}

impl Kind {
    /// `--layout` names, in the order of `ALL`.
    pub const NAMES: [&'static str; 8] = [
        "dzi", "iiif3", "iiif2", "zoomify", "xyz", "tms", "legacy", "custom",
    ];

    /// The kind's `--layout` name.
    pub fn name(self) -> &'static str {
        Kind::NAMES[self as usize]
    }

    /// Every kind, in the order of [`Kind::NAMES`].
    pub const ALL: [Kind; 8] = [
        Kind::Dzi,
        Kind::Iiif3,
        Kind::Iiif2,
        Kind::Zoomify,
        Kind::Xyz,
        Kind::Tms,
        Kind::Legacy,
        Kind::Custom,
    ];

    /// (tile size, overlap) when the user gives none.
    pub fn defaults(self) -> (u32, u32) {
        match self {
            Kind::Dzi => (254, 1),
            Kind::Iiif3 | Kind::Iiif2 => (512, 0),
            _ => (256, 0),
        }
    }

    /// The tile format when the user gives none: PNG where OpenSeadragon insists on it.
    pub fn default_format(self) -> &'static str {
        match self {
            Kind::Xyz | Kind::Tms => "png",
            _ => "jpg",
        }
    }
}

/// Legacy levels and IIIF whole-image sizes stay at or below this many pixels a side.
pub const LEGACY_MAX_SIDE: u32 = 8192;
/// IIIF overview and size images stay at or below this many pixels a side.
pub const IIIF_MAX_SIDE: u32 = 4096;

/// What one level of the cascade produces.
#[derive(Clone, Debug, PartialEq)]
pub struct LevelPlan {
    /// Level width.
    pub width: u32,
    /// Level height.
    pub height: u32,
    /// The level's number in the layout's own naming (DZI: 0 is 1x1).
    pub number: u32,
    /// The level's tile grid (none: no tiles at this level).
    pub grid: Option<Grid>,
    /// Whole-level images (relative paths): legacy levels, IIIF sizes.
    pub wholes: Vec<String>,
}

/// Everything needed to name and describe a pyramid.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Which layout.
    pub kind: Kind,
    /// Base name of the files.
    pub name: String,
    /// Full-resolution width.
    pub width: u32,
    /// Full-resolution height.
    pub height: u32,
    /// Tile side.
    pub tile: u32,
    /// Overlap.
    pub overlap: u32,
    /// Tile file extension: jpg, png or webp.
    pub ext: String,
    /// IIIF base URL (without the name).
    pub id: String,
    /// Custom layout tile template, relative to OUTDIR.
    pub template: String,
    /// How sizes halve.
    pub rounding: Rounding,
    /// IIIF: the sizes written as whole images (`full/SIZE/0/default.EXT`), largest first.
    pub iiif_sizes: Vec<(u32, u32)>,
    /// Tiles not written because a larger level already wrote the same path
    /// (IIIF 2 names tiles by width alone, so different levels can collide).
    pub shadowed: std::collections::HashSet<(usize, u32, u32)>,
    /// TMS tiles are always full 256x256, padded past the image.
    pub pad_tiles: bool,
    /// Cascade levels, full resolution first.
    pub levels: Vec<LevelPlan>,
}

/// What the user chose for a layout.
pub struct Settings {
    /// Base name of the files.
    pub name: String,
    /// Tile side.
    pub tile: u32,
    /// Overlap.
    pub overlap: u32,
    /// Tile file extension.
    pub ext: String,
    /// IIIF base URL.
    pub id: String,
    /// Custom layout template (`{z}`, `{x}`, `{y}`).
    pub template: Option<String>,
}

impl Layout {
    /// Plans the levels of `kind` for a `width` x `height` image.
    pub fn plan(kind: Kind, width: u32, height: u32, s: &Settings) -> Result<Layout, String> {
        let (tile, overlap) = (s.tile, s.overlap);
        let max_side = width.max(height);
        let mut rounding = Rounding::Ceil;
        let mut pad_tiles = false;
        let mut iiif_sizes = Vec::new();
        let grid = |w, h| {
            Some(Grid {
                width: w,
                height: h,
                tile,
                overlap,
            })
        };
        let levels: Vec<LevelPlan> = match kind {
            Kind::Dzi | Kind::Custom => {
                let sizes = level_sizes(width, height, rounding, |w, h| w == 1 && h == 1);
                let top = sizes.len() as u32 - 1;
                sizes
                    .iter()
                    .enumerate()
                    .map(|(i, &(w, h))| LevelPlan {
                        width: w,
                        height: h,
                        number: top - i as u32,
                        grid: grid(w, h),
                        wholes: vec![],
                    })
                    .collect()
            }
            Kind::Iiif3 | Kind::Iiif2 => {
                let sizes = level_sizes(width, height, rounding, |w, h| w <= tile && h <= tile);
                let top = sizes.len() as u32 - 1;
                let overview = sizes
                    .iter()
                    .position(|&(w, h)| w.max(h) <= IIIF_MAX_SIDE)
                    .unwrap_or(sizes.len() - 1);
                let mut used = std::collections::HashSet::new();
                sizes
                    .iter()
                    .enumerate()
                    .map(|(i, &(w, h))| {
                        let mut wholes = vec![];
                        // v2 names sizes by width alone: of levels sharing a width, the largest keeps the name.
                        let p = iiif_size_path(kind, &s.name, w, h, width, height, &s.ext);
                        if i >= overview && used.insert(p.clone()) {
                            wholes.push(p);
                            iiif_sizes.push((w, h));
                        }
                        if i == overview {
                            let full = if kind == Kind::Iiif3 { "max" } else { "full" };
                            let p = format!("{}/full/{full}/0/default.{}", s.name, s.ext);
                            if used.insert(p.clone()) {
                                wholes.push(p);
                            }
                        }
                        LevelPlan {
                            width: w,
                            height: h,
                            number: top - i as u32,
                            grid: grid(w, h),
                            wholes,
                        }
                    })
                    .collect()
            }
            Kind::Zoomify => {
                rounding = Rounding::Floor;
                let sizes = level_sizes(width, height, rounding, |w, h| w <= tile && h <= tile);
                let top = sizes.len() as u32 - 1;
                // OpenSeadragon halves without a floor of 1 px: a tier with a zero side has no tiles.
                let zero_from = |full: u32| {
                    (0..sizes.len())
                        .find(|&i| full >> i == 0)
                        .unwrap_or(usize::MAX)
                };
                let zero = zero_from(width).min(zero_from(height));
                sizes
                    .iter()
                    .enumerate()
                    .map(|(i, &(w, h))| LevelPlan {
                        width: w,
                        height: h,
                        number: top - i as u32,
                        grid: if i >= zero { None } else { grid(w, h) },
                        wholes: vec![],
                    })
                    .collect()
            }
            Kind::Xyz => {
                if tile != 256 {
                    return Err("the xyz layout uses 256-px tiles (OpenSeadragon's openstreetmaps source fixes them)".into());
                }
                let m = ceil_log2(max_side);
                if m < 8 {
                    return Err(format!("{width}x{height} is too small for the xyz layout: OpenSeadragon's openstreetmaps source needs a side above 128 px"));
                }
                let sizes = level_sizes(width, height, rounding, |_, _| false);
                let z_top = m - 8;
                sizes
                    .into_iter()
                    .take(z_top as usize + 1)
                    .enumerate()
                    .map(|(i, (w, h))| LevelPlan {
                        width: w,
                        height: h,
                        number: z_top - i as u32,
                        grid: grid(w, h),
                        wholes: vec![],
                    })
                    .collect()
            }
            Kind::Tms => {
                if tile != 256 {
                    return Err("the tms layout uses 256-px tiles (OpenSeadragon's tiledmapservice source fixes them)".into());
                }
                let buffered = width.div_ceil(256).max(height.div_ceil(256));
                if buffered < 2 {
                    return Err(format!("{width}x{height} is too small for the tms layout: OpenSeadragon's tiledmapservice source needs a side above 256 px"));
                }
                let max_level = ceil_log2(buffered) - 1;
                pad_tiles = true;
                let sizes = level_sizes(width, height, rounding, |_, _| false);
                sizes
                    .into_iter()
                    .take(max_level as usize + 1)
                    .enumerate()
                    .map(|(i, (w, h))| LevelPlan {
                        width: w,
                        height: h,
                        number: max_level - i as u32,
                        grid: grid(w, h),
                        wholes: vec![],
                    })
                    .collect()
            }
            Kind::Legacy => {
                let sizes = level_sizes(width, height, rounding, |w, h| w.max(h) <= 256);
                let top = sizes.len() as u32 - 1;
                sizes
                    .iter()
                    .enumerate()
                    .map(|(i, &(w, h))| {
                        let wholes = if w.max(h) <= LEGACY_MAX_SIDE {
                            vec![format!("{}/{w}x{h}.{}", s.name, s.ext)]
                        } else {
                            vec![]
                        };
                        LevelPlan {
                            width: w,
                            height: h,
                            number: top - i as u32,
                            grid: None,
                            wholes,
                        }
                    })
                    .collect()
            }
        };
        let template = match kind {
            Kind::Custom => {
                let t = s
                    .template
                    .clone()
                    .unwrap_or_else(|| format!("{{z}}/{{x}}_{{y}}.{}", s.ext));
                if !(t.contains("{z}") && t.contains("{x}") && t.contains("{y}")) {
                    return Err(format!(
                        "--template {t:?} must contain {{z}}, {{x}} and {{y}}"
                    ));
                }
                format!("{}/{t}", s.name)
            }
            _ => String::new(),
        };
        let mut layout = Layout {
            kind,
            name: s.name.clone(),
            width,
            height,
            tile,
            overlap,
            ext: s.ext.clone(),
            id: s.id.trim_end_matches('/').to_string(),
            template,
            rounding,
            iiif_sizes,
            shadowed: Default::default(),
            pad_tiles,
            levels,
        };
        // A whole image that is also a tile (IIIF levels smaller than one tile) is written once, as the tile.
        for i in 0..layout.levels.len() {
            if layout.levels[i].grid.is_some() {
                let p = layout.tile_path(i, 0, 0);
                layout.levels[i].wholes.retain(|w| *w != p);
            }
        }
        if kind == Kind::Iiif2 {
            // Tiles first (OpenSeadragon needs them), larger levels first; then whole sizes.
            let mut seen = std::collections::HashSet::new();
            for i in 0..layout.levels.len() {
                let g = layout.levels[i].grid.unwrap();
                for row in 0..g.rows() {
                    for col in 0..g.cols() {
                        if !seen.insert(layout.tile_path(i, col, row)) {
                            layout.shadowed.insert((i, col, row));
                        }
                    }
                }
            }
            for level in &mut layout.levels {
                level.wholes.retain(|w| seen.insert(w.clone()));
            }
            // A size is listed only if its file holds that level.
            let valid: Vec<(u32, u32)> = (0..layout.levels.len())
                .filter(|&i| {
                    let l = &layout.levels[i];
                    let p = iiif_size_path(
                        kind,
                        &layout.name,
                        l.width,
                        l.height,
                        width,
                        height,
                        &layout.ext,
                    );
                    l.wholes.contains(&p)
                        || (layout.tile_path(i, 0, 0) == p && !layout.shadowed.contains(&(i, 0, 0)))
                })
                .map(|i| (layout.levels[i].width, layout.levels[i].height))
                .collect();
            layout.iiif_sizes.retain(|s| valid.contains(s));
        }
        Ok(layout)
    }

    /// Where tile (`col`, `row`) of cascade level `index` goes, relative to OUTDIR.
    pub fn tile_path(&self, index: usize, col: u32, row: u32) -> String {
        let level = &self.levels[index];
        let (n, ext) = (&self.name, &self.ext);
        let z = level.number;
        match self.kind {
            Kind::Dzi => format!("{n}_files/{z}/{col}_{row}.{ext}"),
            Kind::Custom => self
                .template
                .replace("{z}", &z.to_string())
                .replace("{x}", &col.to_string())
                .replace("{y}", &row.to_string()),
            Kind::Xyz => format!("{n}/{z}/{col}/{row}.{ext}"),
            Kind::Tms => {
                let rows = level.grid.unwrap().rows();
                format!("{n}/{z}/{col}/{}.{ext}", rows - 1 - row)
            }
            Kind::Zoomify => {
                let before: u64 = self.levels[index + 1..]
                    .iter()
                    .map(|l| l.grid.map_or(0, |g| g.cols() as u64 * g.rows() as u64))
                    .sum();
                let g = level.grid.unwrap();
                let number = before + row as u64 * g.cols() as u64 + col as u64;
                format!("{n}/TileGroup{}/{z}-{col}-{row}.{ext}", number / 256)
            }
            Kind::Iiif3 | Kind::Iiif2 => self.iiif_tile_path(index, col, row),
            Kind::Legacy => unreachable!("legacy levels have no tiles"),
        }
    }

    /// OpenSeadragon's IIIFTileSource.getTileUrl, with the name as the id.
    fn iiif_tile_path(&self, index: usize, x: u32, y: u32) -> String {
        let v3 = self.kind == Kind::Iiif3;
        let level = &self.levels[index];
        let (w, h) = (self.width as u64, self.height as u64);
        let (lw, lh) = (level.width as u64, level.height as u64);
        let t = self.tile as u64;
        let (region, size) = if lw < t && lh < t {
            let size = if !v3 && lw == w {
                "full".to_string()
            } else if v3 && lw == w && lh == h {
                "max".to_string()
            } else if v3 {
                format!("{lw},{lh}")
            } else {
                format!("{lw},")
            };
            ("full".to_string(), size)
        } else {
            let scale = 1u64 << index; // level index counts halvings from full resolution
            let span = t * scale;
            let (tx, ty) = (x as u64 * span, y as u64 * span);
            let (tw, th) = (span.min(w - tx), span.min(h - ty));
            let region = if x == 0 && y == 0 && tw == w && th == h {
                "full".to_string()
            } else {
                format!("{tx},{ty},{tw},{th}")
            };
            let sw = t.min(lw - x as u64 * t);
            let sh = t.min(lh - y as u64 * t);
            let size = if !v3 && sw == w {
                "full".to_string()
            } else if v3 && sw == w && sh == h {
                "max".to_string()
            } else if !v3 {
                format!("{sw},") // level 0 profile: width only
            } else {
                format!("{sw},{sh}")
            };
            (region, size)
        };
        format!("{}/{region}/{size}/0/default.{}", self.name, self.ext)
    }

    /// Folders to create before writing tiles, relative to OUTDIR, parents first.
    pub fn dirs(&self) -> Vec<String> {
        let mut d = std::collections::BTreeSet::new();
        let mut add = |path: &str| {
            // Every ancestor, so creating them in order needs no recursion.
            let mut p = path;
            while let Some((dir, _)) = p.rsplit_once('/') {
                if !d.insert(dir.to_string()) {
                    break;
                }
                p = dir;
            }
        };
        for (i, level) in self.levels.iter().enumerate() {
            if let Some(g) = level.grid {
                for row in 0..g.rows() {
                    for col in 0..g.cols() {
                        add(&self.tile_path(i, col, row));
                    }
                }
            }
            level.wholes.iter().for_each(|w| add(w));
        }
        // BTreeSet order puts a parent before its children.
        d.into_iter().collect()
    }

    /// The names directly under OUTDIR that the pyramid writes (its tile folders
    /// and description files; the viewer adds `index.html` and `openseadragon`).
    pub fn top_entries(&self) -> std::collections::BTreeSet<String> {
        let first = |p: &str| p.split('/').next().unwrap_or(p).to_string();
        let mut names: std::collections::BTreeSet<String> =
            self.descriptions().iter().map(|(p, _)| first(p)).collect();
        if let Some(level) = self.levels.last() {
            // Every level's tiles share the top folder; the smallest level names it cheaply.
            if level.grid.is_some() {
                names.insert(first(&self.tile_path(self.levels.len() - 1, 0, 0)));
            }
            level.wholes.iter().for_each(|w| {
                names.insert(first(w));
            });
        }
        if let Some(w) = self.levels.first().and_then(|l| l.wholes.first()) {
            names.insert(first(w));
        }
        names
    }

    /// Number of tiles in the whole pyramid.
    pub fn tile_count(&self) -> u64 {
        self.levels
            .iter()
            .filter_map(|l| l.grid)
            .map(|g| g.cols() as u64 * g.rows() as u64)
            .sum::<u64>()
            - self.shadowed.len() as u64
    }

    /// The description files (path relative to OUTDIR, contents), written last.
    pub fn descriptions(&self) -> Vec<(String, String)> {
        let (n, w, h, t, ext) = (&self.name, self.width, self.height, self.tile, &self.ext);
        match self.kind {
            Kind::Dzi => vec![(
                format!("{n}.dzi"),
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Image xmlns=\"http://schemas.microsoft.com/deepzoom/2008\" Format=\"{ext}\" Overlap=\"{}\" TileSize=\"{t}\">\n  <Size Width=\"{w}\" Height=\"{h}\"/>\n</Image>\n",
                    self.overlap
                ),
            )],
            Kind::Iiif3 | Kind::Iiif2 => vec![(format!("{n}/info.json"), format!("{:#}\n", self.iiif_info(&format!("{}/{n}", self.id))))],
            Kind::Zoomify => vec![(
                format!("{n}/ImageProperties.xml"),
                format!("<IMAGE_PROPERTIES WIDTH=\"{w}\" HEIGHT=\"{h}\" NUMTILES=\"{}\" NUMIMAGES=\"1\" VERSION=\"1.8\" TILESIZE=\"{t}\" />\n", self.tile_count()),
            )],
            Kind::Xyz | Kind::Tms | Kind::Legacy | Kind::Custom => {
                vec![(format!("{n}.json"), format!("{:#}\n", self.viewer_source_json()))]
            }
        }
    }

    /// The file name of this (xyz) pyramid as a PMTiles archive.
    pub fn archive_name(&self) -> String {
        format!("{}.pmtiles", self.name)
    }

    /// The JSON metadata of the archive: the conventional `name`, `type` and
    /// `description`, and what a viewer needs to show the image.
    pub fn archive_metadata(&self) -> serde_json::Value {
        let top = self.levels[0].number;
        json!({
            "name": self.name,
            "type": "baselayer",
            "format": self.ext,
            "description": format!("{}x{} image as an xyz tile pyramid by giga: zoom 0 is one tile, zoom {top} full resolution", self.width, self.height),
            "giga": {
                "width": self.width, "height": self.height, "tileSize": self.tile,
                "minZoom": 0, "maxZoom": top, "format": self.ext,
            }
        })
    }

    /// The IIIF info.json object with `id`.
    pub fn iiif_info(&self, id: &str) -> serde_json::Value {
        let (w, h) = (self.width, self.height);
        let scale_factors: Vec<u64> = (0..self.levels.len()).map(|i| 1u64 << i).collect();
        // Sizes that exist as whole images, smallest first.
        let sizes: Vec<serde_json::Value> = self
            .iiif_sizes
            .iter()
            .rev()
            .map(|&(w, h)| json!({"width": w, "height": h}))
            .collect();
        let overview = self
            .levels
            .iter()
            .find(|l| l.width.max(l.height) <= IIIF_MAX_SIDE)
            .unwrap_or(self.levels.last().unwrap());
        let limit = (w, h) != (overview.width, overview.height);
        let tiles =
            json!([{"width": self.tile, "height": self.tile, "scaleFactors": scale_factors}]);
        if self.kind == Kind::Iiif3 {
            let mut o = json!({
                "@context": "http://iiif.io/api/image/3/context.json",
                "id": id,
                "type": "ImageService3",
                "protocol": "http://iiif.io/api/image",
                "profile": "level0",
                "width": w,
                "height": h,
                "sizes": sizes,
                "tiles": tiles,
            });
            if limit {
                o["maxWidth"] = json!(overview.width);
                o["maxHeight"] = json!(overview.height);
            }
            if self.ext != "jpg" {
                o["preferredFormats"] = json!([self.ext]);
                o["extraFormats"] = json!([self.ext]);
            }
            o
        } else {
            let mut p = json!({"formats": [self.ext], "qualities": ["default"]});
            if limit {
                p["maxWidth"] = json!(overview.width);
                p["maxHeight"] = json!(overview.height);
            }
            json!({
                "@context": "http://iiif.io/api/image/2/context.json",
                "@id": id,
                "protocol": "http://iiif.io/api/image",
                "profile": ["http://iiif.io/api/image/2/level0.json", p],
                "width": w,
                "height": h,
                "sizes": sizes,
                "tiles": tiles,
            })
        }
    }

    /// The tile source object given to OpenSeadragon, with URLs relative to OUTDIR.
    pub fn viewer_source_json(&self) -> serde_json::Value {
        let (n, w, h, t) = (&self.name, self.width, self.height, self.tile);
        match self.kind {
            Kind::Dzi => json!({"Image": {
                "xmlns": "http://schemas.microsoft.com/deepzoom/2008",
                "Url": format!("{n}_files/"),
                "Format": self.ext, "Overlap": self.overlap.to_string(), "TileSize": t.to_string(),
                "Size": {"Width": w.to_string(), "Height": h.to_string()}
            }}),
            Kind::Iiif3 | Kind::Iiif2 => self.iiif_info(n),
            Kind::Zoomify => {
                json!({"type": "zoomifytileservice", "width": w, "height": h, "tilesUrl": format!("{n}/"), "tileSize": t, "fileFormat": self.ext})
            }
            Kind::Xyz => {
                json!({"type": "openstreetmaps", "width": w, "height": h, "tileSize": 256, "tileOverlap": 0, "tilesUrl": format!("{n}/")})
            }
            Kind::Tms => {
                json!({"type": "tiledmapservice", "width": w, "height": h, "tilesUrl": format!("{n}/")})
            }
            Kind::Legacy => {
                let mut levels: Vec<serde_json::Value> = self
                    .levels
                    .iter()
                    .filter(|l| !l.wholes.is_empty())
                    .map(|l| json!({"url": l.wholes[0], "width": l.width, "height": l.height}))
                    .collect();
                levels.reverse();
                json!({"type": "legacy-image-pyramid", "levels": levels})
            }
            Kind::Custom => json!({
                "width": w, "height": h, "tileSize": t, "tileOverlap": self.overlap,
                "minLevel": 0, "maxLevel": self.levels[0].number, "template": self.template,
            }),
        }
    }
}

/// The path of a whole-image IIIF size, as OpenSeadragon and validators request it.
fn iiif_size_path(
    kind: Kind,
    name: &str,
    w: u32,
    h: u32,
    full_w: u32,
    full_h: u32,
    ext: &str,
) -> String {
    let size = match kind {
        Kind::Iiif3 if (w, h) == (full_w, full_h) => "max".to_string(),
        Kind::Iiif3 => format!("{w},{h}"),
        _ if w == full_w => "full".to_string(),
        _ => format!("{w},"),
    };
    format!("{name}/full/{size}/0/default.{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_names_and_order_agree() {
        for (i, k) in Kind::ALL.into_iter().enumerate() {
            assert_eq!(k as usize, i);
            assert_eq!(k.name(), Kind::NAMES[i]);
        }
    }

    fn settings(kind: Kind) -> Settings {
        let (tile, overlap) = kind.defaults();
        Settings {
            name: "p".into(),
            tile,
            overlap,
            ext: kind.default_format().into(),
            id: "https://example.org/iiif".into(),
            template: None,
        }
    }

    #[test]
    fn dzi_levels_and_paths() {
        let l = Layout::plan(Kind::Dzi, 7026, 9221, &settings(Kind::Dzi)).unwrap();
        assert_eq!(l.levels.len(), 15);
        assert_eq!(l.levels[0].number, 14);
        assert_eq!(l.tile_path(0, 3, 5), "p_files/14/3_5.jpg");
        assert_eq!(l.levels[14].number, 0);
    }

    #[test]
    fn zoomify_floor_tiers_and_groups() {
        let l = Layout::plan(Kind::Zoomify, 1025, 1025, &settings(Kind::Zoomify)).unwrap();
        let sizes: Vec<_> = l.levels.iter().map(|x| (x.width, x.number)).collect();
        assert_eq!(sizes, vec![(1025, 2), (512, 1), (256, 0)]);
        // Tier 0: 1 tile, tier 1: 4 tiles; tile (0,0) of tier 2 is number 5.
        assert_eq!(l.tile_path(0, 0, 0), "p/TileGroup0/2-0-0.jpg");
        assert_eq!(l.tile_count(), 1 + 4 + 25);
    }

    #[test]
    fn iiif_paths_follow_openseadragon() {
        let l = Layout::plan(
            Kind::Iiif3,
            1000,
            600,
            &Settings {
                tile: 256,
                ..settings(Kind::Iiif3)
            },
        )
        .unwrap();
        // 1000 -> 500 -> 250: levels until one tile holds it.
        assert_eq!(l.levels.len(), 3);
        assert_eq!(l.tile_path(0, 0, 0), "p/0,0,256,256/256,256/0/default.jpg");
        assert_eq!(
            l.tile_path(0, 3, 2),
            "p/768,512,232,88/232,88/0/default.jpg"
        );
        assert_eq!(
            l.tile_path(1, 1, 0),
            "p/512,0,488,512/244,256/0/default.jpg"
        );
        assert_eq!(l.tile_path(2, 0, 0), "p/full/250,150/0/default.jpg");
        let v2 = Layout::plan(
            Kind::Iiif2,
            1000,
            600,
            &Settings {
                tile: 256,
                ..settings(Kind::Iiif2)
            },
        )
        .unwrap();
        assert_eq!(v2.tile_path(1, 1, 0), "p/512,0,488,512/244,/0/default.jpg");
        assert_eq!(v2.tile_path(2, 0, 0), "p/full/250,/0/default.jpg");
    }

    #[test]
    fn tms_counts_rows_from_the_bottom() {
        let l = Layout::plan(Kind::Tms, 1000, 600, &settings(Kind::Tms)).unwrap();
        // buffered 1024x768 -> 4 tiles across -> maxLevel = 1
        assert_eq!(l.levels.len(), 2);
        assert_eq!(l.levels[0].number, 1);
        assert_eq!(l.tile_path(0, 0, 0), "p/1/0/2.png");
        assert!(Layout::plan(Kind::Tms, 200, 100, &settings(Kind::Tms)).is_err());
    }

    #[test]
    fn xyz_levels() {
        let l = Layout::plan(Kind::Xyz, 1000, 600, &settings(Kind::Xyz)).unwrap();
        // ceil(log2(1000)) = 10 -> z = 0..2
        assert_eq!(
            l.levels
                .iter()
                .map(|x| (x.number, x.width))
                .collect::<Vec<_>>(),
            vec![(2, 1000), (1, 500), (0, 250)]
        );
        assert!(Layout::plan(Kind::Xyz, 100, 100, &settings(Kind::Xyz)).is_err());
    }
}
