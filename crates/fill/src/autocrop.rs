//! The largest axis-aligned rectangle without transparent pixels, found row
//! by row: each column's count of opaque pixels ending at the current row is
//! a histogram, and the largest rectangle under a histogram takes one stack
//! pass. Every rectangle inside the opaque area lies inside one of the
//! maximal rectangles the stack pass visits, so fitting an aspect ratio into
//! each of those finds the largest rectangle of that ratio too.
//!
//! Ties: the larger area wins; among equal areas the topmost, then the
//! leftmost, then the shorter (so rows scanned in parallel agree with one
//! pass). With an aspect ratio the rectangle sits at the top-left of the
//! maximal rectangle it was fitted into.

use std::sync::atomic::{AtomicU64, Ordering};

use raster::{Rect, Result, Samples, Source, Strip};

/// A width:height ratio, reduced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Aspect {
    /// Width part of the ratio.
    pub w: u32,
    /// Height part of the ratio.
    pub h: u32,
}

impl Aspect {
    /// Parses `W:H` (both positive).
    pub fn parse(s: &str) -> Option<Aspect> {
        let (a, b) = s.split_once(':')?;
        let (w, h): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        if w == 0 || h == 0 {
            return None;
        }
        let g = gcd(w, h);
        Some(Aspect { w: w / g, h: h / g })
    }

    /// The largest rectangle of this ratio inside `w` x `h`.
    fn fit(self, w: u32, h: u32) -> (u32, u32) {
        let k = (w / self.w).min(h / self.h);
        (k * self.w, k * self.h)
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Tracks the best rectangle as rows arrive.
pub struct Finder {
    width: u32,
    heights: Vec<u32>,
    y: u32,
    aspect: Option<Aspect>,
    best: Option<Rect>,
    stack: Vec<(u32, u32)>,
}

fn better(a: &Rect, b: &Option<Rect>) -> bool {
    match b {
        None => true,
        Some(b) => {
            let (aa, ba) = (
                a.width as u64 * a.height as u64,
                b.width as u64 * b.height as u64,
            );
            aa > ba || (aa == ba && (a.y, a.x, a.height) < (b.y, b.x, b.height))
        }
    }
}

impl Finder {
    /// A finder for rows `width` pixels wide, optionally of one aspect ratio.
    pub fn new(width: u32, aspect: Option<Aspect>) -> Finder {
        Finder {
            width,
            heights: vec![0; width as usize],
            y: 0,
            aspect,
            best: None,
            stack: Vec::new(),
        }
    }

    /// Adds one row: `opaque[x]` says whether pixel x counts as opaque.
    pub fn push_row(&mut self, opaque: impl Iterator<Item = bool>) {
        for (h, o) in self.heights.iter_mut().zip(opaque) {
            *h = if o { *h + 1 } else { 0 };
        }
        self.scan_row();
    }

    /// Adds one row given as its column heights (opaque run lengths ending at this row).
    pub fn push_heights(&mut self, heights: &[u32]) {
        self.heights.copy_from_slice(heights);
        self.scan_row();
    }

    /// The stack pass over the current heights.
    fn scan_row(&mut self) {
        let bottom = self.y;
        self.y += 1;
        let floor = self.best_area();
        if let Some(r) = scan(
            &self.heights,
            bottom,
            self.aspect,
            &AtomicU64::new(floor),
            &mut self.stack,
        ) {
            if better(&r, &self.best) {
                self.best = Some(r);
            }
        }
    }

    /// Adds `rows` rows given as their column heights, one after the other in
    /// `heights`, scanning them on all cores (each row's pass is independent).
    pub fn push_batch(&mut self, heights: &[u32], rows: u32) {
        use rayon::prelude::*;
        let w = self.width as usize;
        let floor = AtomicU64::new(self.best_area());
        let top = self.y;
        let aspect = self.aspect;
        let found = heights
            .par_chunks_exact(w)
            .enumerate()
            .fold(
                || (Vec::new(), None::<Rect>),
                |(mut stack, best), (k, h)| {
                    let r = scan(h, top + k as u32, aspect, &floor, &mut stack);
                    let best = match r {
                        Some(r) if better(&r, &best) => Some(r),
                        _ => best,
                    };
                    (stack, best)
                },
            )
            .map(|(_, b)| b)
            .reduce(
                || None,
                |a, b| match b {
                    Some(r) if better(&r, &a) => b,
                    _ => a,
                },
            );
        if let Some(r) = found {
            if better(&r, &self.best) {
                self.best = Some(r);
            }
        }
        self.heights.copy_from_slice(&heights[heights.len() - w..]);
        self.y += rows;
    }

    fn best_area(&self) -> u64 {
        self.best.map_or(1, |b| b.width as u64 * b.height as u64)
    }

    /// The best rectangle so far, or `None` if no pixel is opaque.
    pub fn best(&self) -> Option<Rect> {
        self.best
    }
}

/// The largest rectangle whose bottom row is `bottom`, under `heights`, among those whose
/// area reaches `floor` (which other rows' scans may raise meanwhile); ties as [`better`].
fn scan(
    heights: &[u32],
    bottom: u32,
    aspect: Option<Aspect>,
    floor: &AtomicU64,
    stack: &mut Vec<(u32, u32)>,
) -> Option<Rect> {
    let width = heights.len() as u32;
    let mut best: Option<Rect> = None;
    stack.clear();
    // Stack of (start column, height), heights increasing.
    for x in 0..=width {
        let h = if x < width { heights[x as usize] } else { 0 };
        let mut start = x;
        while let Some(&(s, sh)) = stack.last() {
            if sh < h {
                break;
            }
            stack.pop();
            // Maximal rectangle: columns s..x, height sh (skipped when it can't reach
            // the floor: its area only shrinks with an aspect).
            if sh > 0 && (sh as u64 * (x - s) as u64) >= floor.load(Ordering::Relaxed) {
                let (w, hh) = match aspect {
                    Some(a) => a.fit(x - s, sh),
                    None => (x - s, sh),
                };
                if w > 0 && hh > 0 {
                    let r = Rect {
                        x: s,
                        y: bottom + 1 - sh,
                        width: w,
                        height: hh,
                    };
                    if better(&r, &best) {
                        best = Some(r);
                        floor.fetch_max(w as u64 * hh as u64, Ordering::Relaxed);
                    }
                }
            }
            start = s;
        }
        if stack.last().is_none_or(|&(_, sh)| sh < h) {
            stack.push((start, h));
        }
    }
    best
}

/// Updates the column heights with every row of `strip` (a pixel counts as
/// opaque when its alpha is at least `threshold` of full) and hands each
/// row's heights to `emit`.
fn heights_of_strip(
    heights: &mut [u32],
    strip: &Strip,
    threshold: f64,
    mut emit: impl FnMut(&[u32]),
) {
    let c = strip.channels as usize;
    let n = strip.width as usize;
    let alpha = strip.format().has_alpha();
    for row in 0..strip.height as usize {
        let px = row * n * c..(row + 1) * n * c;
        fn update<T: Copy>(heights: &mut [u32], px: &[T], c: usize, opaque: impl Fn(T) -> bool) {
            for (h, p) in heights.iter_mut().zip(px.chunks_exact(c)) {
                *h = if opaque(p[c - 1]) { *h + 1 } else { 0 };
            }
        }
        match &strip.samples {
            _ if !alpha => heights.iter_mut().for_each(|h| *h += 1),
            Samples::U8(v) => {
                let t = (threshold * 255.0).ceil() as u8;
                update(heights, &v[px], c, |a| a >= t)
            }
            Samples::U16(v) => {
                let t = (threshold * 65535.0).ceil() as u16;
                update(heights, &v[px], c, |a| a >= t)
            }
            Samples::F32(v) => update(heights, &v[px], c, |a| a as f64 >= threshold),
        }
        emit(heights);
    }
}

/// Streams `source` and returns the largest rectangle whose alpha is at
/// least `threshold` (1.0: fully opaque only). Images without alpha are
/// opaque everywhere. Two threads: one reads and updates the column
/// heights, the other runs the stack search over each row's heights.
pub fn largest_rectangle(
    source: Box<dyn Source>,
    threshold: f64,
    aspect: Option<Aspect>,
    mut progress: impl FnMut(u32),
) -> Result<Option<Rect>> {
    let info = source.info();
    let width = info.width as usize;
    // Batches of rows' heights, so the channel isn't touched per row.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<(Vec<u32>, u32)>>(4);
    let reader = std::thread::spawn(move || {
        let mut source = source;
        let mut heights = vec![0u32; width];
        loop {
            match source.next_strip() {
                Ok(Some(s)) => {
                    let mut batch = Vec::with_capacity(width * s.height as usize);
                    heights_of_strip(&mut heights, &s, threshold, |h| batch.extend_from_slice(h));
                    if tx.send(Ok((batch, s.height))).is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });
    let mut f = Finder::new(info.width, aspect);
    let mut result = Ok(());
    for item in rx.iter() {
        match item {
            Ok((batch, rows)) => {
                f.push_batch(&batch, rows);
                progress(rows);
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    drop(rx);
    let _ = reader.join();
    result.map(|_| f.best())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The same rows pushed in parallel batches of `batch` rows.
    fn run_batched(mask: &[Vec<bool>], aspect: Option<Aspect>, batch: usize) -> Option<Rect> {
        let w = mask[0].len();
        let mut f = Finder::new(w as u32, aspect);
        let mut heights = vec![0u32; w];
        for chunk in mask.chunks(batch) {
            let mut all = Vec::new();
            for row in chunk {
                for (h, &o) in heights.iter_mut().zip(row) {
                    *h = if o { *h + 1 } else { 0 };
                }
                all.extend_from_slice(&heights);
            }
            f.push_batch(&all, chunk.len() as u32);
        }
        f.best()
    }

    fn run(mask: &[Vec<bool>], aspect: Option<Aspect>) -> Option<Rect> {
        let mut f = Finder::new(mask[0].len() as u32, aspect);
        for row in mask {
            f.push_row(row.iter().copied());
        }
        f.best()
    }

    /// Every rectangle, checked pixel by pixel, same tie rule.
    fn brute(mask: &[Vec<bool>], aspect: Option<Aspect>) -> Option<Rect> {
        let (h, w) = (mask.len() as u32, mask[0].len() as u32);
        let mut best: Option<Rect> = None;
        for y in 0..h {
            for x in 0..w {
                for rh in 1..=h - y {
                    for rw in 1..=w - x {
                        if let Some(a) = aspect {
                            if rw * a.h != rh * a.w {
                                continue;
                            }
                        }
                        let ok = (y..y + rh)
                            .all(|yy| (x..x + rw).all(|xx| mask[yy as usize][xx as usize]));
                        let r = Rect {
                            x,
                            y,
                            width: rw,
                            height: rh,
                        };
                        if ok && better(&r, &best) {
                            best = Some(r);
                        }
                    }
                }
            }
        }
        best
    }

    fn area(r: Option<Rect>) -> u64 {
        r.map_or(0, |r| r.width as u64 * r.height as u64)
    }

    fn mask_from(s: &[&str]) -> Vec<Vec<bool>> {
        s.iter()
            .map(|r| r.chars().map(|c| c == '#').collect())
            .collect()
    }

    #[test]
    fn classic_shapes() {
        let l = mask_from(&["#...", "#...", "####", "####"]);
        assert_eq!(
            run(&l, None),
            Some(Rect {
                x: 0,
                y: 2,
                width: 4,
                height: 2
            })
        );
        let ring = mask_from(&["#####", "#...#", "#...#", "#####"]);
        assert_eq!(
            run(&ring, None),
            Some(Rect {
                x: 0,
                y: 0,
                width: 5,
                height: 1
            })
        );
        let empty = mask_from(&["...", "..."]);
        assert_eq!(run(&empty, None), None);
        let full = mask_from(&["###", "###"]);
        assert_eq!(
            run(&full, Some(Aspect::parse("1:1").unwrap())),
            Some(Rect {
                x: 0,
                y: 0,
                width: 2,
                height: 2
            })
        );
    }

    #[test]
    fn wavy_border() {
        // A panorama-like mask: opaque between two sine curves.
        let (w, h) = (60, 30);
        let mask: Vec<Vec<bool>> = (0..h)
            .map(|y| {
                (0..w)
                    .map(|x| {
                        let top = 4.0 + 3.0 * (x as f64 / 7.0).sin();
                        let bottom = 25.0 + 3.0 * (x as f64 / 5.0).cos();
                        (y as f64) >= top && (y as f64) < bottom && x > 2 && x < 57
                    })
                    .collect()
            })
            .collect();
        assert_eq!(run(&mask, None), brute(&mask, None));
    }

    proptest! {
        #[test]
        fn matches_brute_force(w in 1usize..9, h in 1usize..9, bits in proptest::collection::vec(prop::bool::weighted(0.75), 81)) {
            let mask: Vec<Vec<bool>> = (0..h).map(|y| (0..w).map(|x| bits[y * 9 + x]).collect()).collect();
            prop_assert_eq!(run(&mask, None), brute(&mask, None));
        }

        #[test]
        fn parallel_batches_match_brute_force(w in 1usize..9, h in 1usize..9, batch in 1usize..5, aw in 1u32..4, ah in 1u32..4,
                                              bits in proptest::collection::vec(prop::bool::weighted(0.75), 81)) {
            let mask: Vec<Vec<bool>> = (0..h).map(|y| (0..w).map(|x| bits[y * 9 + x]).collect()).collect();
            prop_assert_eq!(run_batched(&mask, None, batch), brute(&mask, None));
            let a = Aspect::parse(&format!("{aw}:{ah}"));
            prop_assert_eq!(run_batched(&mask, a, batch), run(&mask, a));
        }

        #[test]
        fn aspect_area_matches_brute_force(w in 1usize..9, h in 1usize..9, aw in 1u32..4, ah in 1u32..4,
                                           bits in proptest::collection::vec(prop::bool::weighted(0.8), 81)) {
            let mask: Vec<Vec<bool>> = (0..h).map(|y| (0..w).map(|x| bits[y * 9 + x]).collect()).collect();
            let a = Aspect::parse(&format!("{aw}:{ah}"));
            let got = run(&mask, a);
            // The area is optimal and the rectangle really is opaque and of that ratio.
            prop_assert_eq!(area(got), area(brute(&mask, a)));
            if let Some(r) = got {
                let a = a.unwrap();
                prop_assert_eq!(r.width * a.h, r.height * a.w);
                for y in r.y..r.y + r.height {
                    for x in r.x..r.x + r.width {
                        prop_assert!(mask[y as usize][x as usize]);
                    }
                }
            }
        }
    }
}
