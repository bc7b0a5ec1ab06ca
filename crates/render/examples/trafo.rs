//! Maps points like Hugin's `pano_trafo`, for the geometry tests:
//! `trafo PROJECT.pto IMAGE [-r] < points`, one "x y" per line; frame pixel ->
//! canvas pixel, or canvas -> frame with `-r`. Points the lens can't see print "nan nan".

use std::io::{BufRead, Write};

use render::geometry::{CanvasMap, FrameMap};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let reverse = args.iter().any(|a| a == "-r");
    let rest: Vec<&String> = args.iter().filter(|a| *a != "-r").collect();
    let [project, image] = rest[..] else {
        eprintln!("usage: trafo PROJECT.pto IMAGE [-r] < points");
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(project).expect("read the project");
    let p = render::pto::parse(&text).expect("parse the project");
    let frame = &p.frames[image.parse::<usize>().expect("image number")];
    let (canvas, map) = (CanvasMap::new(&p.canvas), FrameMap::new(frame));
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin");
        let v: Vec<f64> = line
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect();
        if v.len() < 2 {
            continue;
        }
        let r = if reverse {
            map.pixel(canvas.ray(v[0], v[1]))
        } else {
            canvas.pixel(map.ray(v[0], v[1]))
        };
        let (x, y) = r.unwrap_or((f64::NAN, f64::NAN));
        writeln!(out, "{x:.6} {y:.6}").unwrap();
    }
}
