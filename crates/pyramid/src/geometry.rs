//! Level sizes and tile grids, as OpenSeadragon computes them.

/// How each level's size follows from the one above it: halved and rounded
/// up (DZI, IIIF, OSM, TMS: the last odd row or column is paired with
/// itself) or rounded down (Zoomify: it is dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    /// Round up: a last odd row or column is kept (halved with itself).
    Ceil,
    /// Round down: a last odd row or column is dropped (at least 1 stays).
    Floor,
}

impl Rounding {
    /// The next level's size for `v`.
    pub fn half(self, v: u32) -> u32 {
        match self {
            Rounding::Ceil => v.div_ceil(2),
            Rounding::Floor => (v / 2).max(1),
        }
    }
}

/// Sizes from full resolution down, halving until `done(w, h)` holds for the last one.
pub fn level_sizes(
    width: u32,
    height: u32,
    rounding: Rounding,
    done: impl Fn(u32, u32) -> bool,
) -> Vec<(u32, u32)> {
    let mut sizes = vec![(width, height)];
    let (mut w, mut h) = (width, height);
    while !done(w, h) && (w > 1 || h > 1) {
        w = rounding.half(w);
        h = rounding.half(h);
        sizes.push((w, h));
    }
    sizes
}

/// ceil(log2(n)) for n >= 1: the number of halvings from n down to 1.
pub fn ceil_log2(n: u32) -> u32 {
    32 - (n.max(1) - 1).leading_zeros()
}

/// The tiles of one level: square tiles of `tile` pixels with `overlap`
/// pixels shared with each neighbour (OpenSeadragon's DZI model; overlap 0
/// for every other layout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    /// The level's width.
    pub width: u32,
    /// The level's height.
    pub height: u32,
    /// Tile side.
    pub tile: u32,
    /// Pixels a tile shares with each neighbour.
    pub overlap: u32,
}

impl Grid {
    /// Columns of tiles.
    pub fn cols(&self) -> u32 {
        self.width.div_ceil(self.tile)
    }
    /// Rows of tiles.
    pub fn rows(&self) -> u32 {
        self.height.div_ceil(self.tile)
    }
    /// Pixel range `[start, end)` of tile `i` along an axis of `extent` pixels.
    pub fn span(&self, i: u32, extent: u32) -> (u32, u32) {
        let start = (i * self.tile).saturating_sub(if i > 0 { self.overlap } else { 0 });
        let end =
            ((i + 1) as u64 * self.tile as u64 + self.overlap as u64).min(extent as u64) as u32;
        (start, end)
    }
    /// Pixel columns `[start, end)` of tile column `col`, overlap included.
    pub fn x_span(&self, col: u32) -> (u32, u32) {
        self.span(col, self.width)
    }
    /// Pixel rows `[start, end)` of tile row `row`, overlap included.
    pub fn y_span(&self, row: u32) -> (u32, u32) {
        self.span(row, self.height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dzi_spans() {
        let g = Grid {
            width: 7026,
            height: 9221,
            tile: 254,
            overlap: 1,
        };
        assert_eq!(g.x_span(0), (0, 255));
        assert_eq!(g.x_span(1), (253, 509));
        let last = g.cols() - 1;
        assert_eq!(g.x_span(last), (last * 254 - 1, 7026));
    }

    #[test]
    fn sizes_reach_one_pixel() {
        let s = level_sizes(7026, 9221, Rounding::Ceil, |w, h| w == 1 && h == 1);
        assert_eq!(s.len(), 15); // M = 14, levels 0..=14
        assert_eq!(s.last(), Some(&(1, 1)));
        assert_eq!(ceil_log2(9221), 14);
        assert_eq!(ceil_log2(1), 0);
        assert_eq!(ceil_log2(256), 8);
        assert_eq!(ceil_log2(257), 9);
        let z = level_sizes(1025, 1025, Rounding::Floor, |w, h| w <= 256 && h <= 256);
        assert_eq!(z, vec![(1025, 1025), (512, 512), (256, 256)]);
    }
}
