//! Command-line arguments. The help texts are the user's manual: keep them
//! short, concrete and true.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Tile pyramid layouts (`--layout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LayoutArg {
    Dzi,
    Iiif3,
    Iiif2,
    Zoomify,
    Xyz,
    Tms,
    Legacy,
    Custom,
}

impl From<LayoutArg> for pyramid::Kind {
    fn from(l: LayoutArg) -> pyramid::Kind {
        use pyramid::Kind;
        match l {
            LayoutArg::Dzi => Kind::Dzi,
            LayoutArg::Iiif3 => Kind::Iiif3,
            LayoutArg::Iiif2 => Kind::Iiif2,
            LayoutArg::Zoomify => Kind::Zoomify,
            LayoutArg::Xyz => Kind::Xyz,
            LayoutArg::Tms => Kind::Tms,
            LayoutArg::Legacy => Kind::Legacy,
            LayoutArg::Custom => Kind::Custom,
        }
    }
}

/// Tile image formats (`giga tile --format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TileFormatArg {
    Jpg,
    Png,
    Webp,
}

/// How `render` joins frames (`--blend`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BlendArg {
    TwoBand,
    Multiband,
    Feather,
}

/// Where `render`'s seams run (`--seams`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SeamsArg {
    Content,
    Voronoi,
}

impl From<SeamsArg> for render::Seams {
    fn from(s: SeamsArg) -> render::Seams {
        match s {
            SeamsArg::Content => render::Seams::Content,
            SeamsArg::Voronoi => render::Seams::Voronoi,
        }
    }
}

impl From<BlendArg> for render::Blend {
    fn from(b: BlendArg) -> render::Blend {
        match b {
            BlendArg::TwoBand => render::Blend::TwoBand,
            BlendArg::Multiband => render::Blend::Multiband,
            BlendArg::Feather => render::Blend::Feather,
        }
    }
}

/// `render --interpolator`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InterpolatorArg {
    Bicubic,
    Bilinear,
    Nearest,
}

impl From<InterpolatorArg> for render::Interpolator {
    fn from(i: InterpolatorArg) -> render::Interpolator {
        match i {
            InterpolatorArg::Bicubic => render::Interpolator::Bicubic,
            InterpolatorArg::Bilinear => render::Interpolator::Bilinear,
            InterpolatorArg::Nearest => render::Interpolator::Nearest,
        }
    }
}

/// TIFF compression (`--compression`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    Deflate,
    None,
    Packbits,
}

impl From<CompressionArg> for formats::Compression {
    fn from(c: CompressionArg) -> formats::Compression {
        match c {
            CompressionArg::Deflate => formats::Compression::Deflate,
            CompressionArg::None => formats::Compression::None,
            CompressionArg::Packbits => formats::Compression::PackBits,
        }
    }
}

/// Output depth (`--depth`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DepthArg {
    #[value(name = "8")]
    Eight,
    #[value(name = "16")]
    Sixteen,
    #[value(name = "32")]
    Float,
}

impl From<DepthArg> for raster::SampleType {
    fn from(d: DepthArg) -> raster::SampleType {
        match d {
            DepthArg::Eight => raster::SampleType::U8,
            DepthArg::Sixteen => raster::SampleType::U16,
            DepthArg::Float => raster::SampleType::F32,
        }
    }
}

/// Single-file tile archives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ArchiveKind {
    /// PMTiles v3: a header and root directory in the first 16 KB, leaf directories on demand
    Pmtiles,
}

#[derive(Parser)]
#[command(
    name = "giga",
    version,
    about = "Inspect, convert, tile, fill, render and serve gigapixel panoramas without loading them into memory",
    long_about = "giga works on images of any size (a 62-gigapixel KRO is 248 GB) in a few hundred \
MB of memory: every command streams the image top to bottom in strips.\n\n\
Formats: KRO, TIFF/BigTIFF, PSD/PSB, PNG, JPEG, PNM (PPM/PGM/PAM), and giga's PMTiles \
archives as input. Input formats are recognised by content; output formats by extension (or \
--format).",
    after_help = "Examples:\n  giga info pano.kro\n  giga convert pano.kro pano.tif           # tiled deflate BigTIFF when needed\n  giga crop pano.kro detail.jpg --rel 0.4,0.3,0.1,0.1\n  giga convert pano.tif pano8.psb --depth 8\n  giga tile pano.kro site/                 # DZI + index.html for OpenSeadragon\n  giga fill pano.kro filled.tif            # paint the transparent border\n  giga autocrop pano.kro --print           # largest rectangle without transparency\n  giga preview pano.pto check.png --seams  # look before rendering: seconds, not an hour\n  giga render pano.pto pano.kro            # a Hugin project, rendered in bounded memory\n  giga tile pano.kro site/ --archive pmtiles  # one file instead of a million tiles\n  giga serve pano.tif                      # IIIF server on http://127.0.0.1:8080/\n\n`giga help COMMAND` explains each command with examples.\n\nExit status: 0 success, 1 an error with the input or output, 2 bad usage."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Most memory a file's header may make giga hold at once, in GB (a progressive JPEG,
    /// an interlaced PNG or a TIFF strip decoded whole); files that need more are refused
    #[arg(long, global = true, default_value_t = 2.0, value_name = "GB",
          value_parser = parse_gb)]
    pub max_memory: f64,
}

/// A TIFF tile side: a multiple of 16 (the TIFF rule) up to 4096 (bigger tiles only
/// cost memory: a row of them is held while writing).
fn parse_tiff_tile(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(v) if v % 16 == 0 && (16..=4096).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s:?} is not a TIFF tile side (a multiple of 16 from 16 to 4096)"
        )),
    }
}

/// A positive size in GB, at most 1 PB.
fn parse_gb(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1e6 => Ok(v),
        _ => Err(format!("{s:?} is not a size in GB (a number above 0)")),
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Print an image's format, size, channels and depth (or what a .pto project renders to)
    Info {
        /// The image to describe, or a Hugin/PanoTools project (.pto)
        file: PathBuf,
        /// Print one JSON object (keys: file, format, width, height, channels, bits, sample, file_size, ...)
        #[arg(long)]
        json: bool,
    },
    /// Cut a rectangle out of an image (KRO input reads only that window)
    #[command(
        after_help = "Examples:\n  giga crop pano.kro face.png --rect 120000,40000,2000,1500\n  giga crop pano.kro middle.tif --rel 0.25,0.25,0.5,0.5\n\n--rel uses fractions of the width and height: x0 = floor(X*width), y0 = floor(Y*height),\nw = floor(W*width), h = floor(H*height). Either way the window is clamped to the image;\na window with nothing left is an error."
    )]
    Crop {
        /// The image to crop
        input: PathBuf,
        /// Where to write the window (format from the extension, or --format)
        output: PathBuf,
        /// The window in pixels: X,Y,WIDTH,HEIGHT
        #[arg(
            long,
            value_name = "X,Y,W,H",
            conflicts_with = "rel",
            required_unless_present = "rel"
        )]
        rect: Option<String>,
        /// The window as fractions (0..1) of the width and height: X,Y,W,H
        #[arg(long, value_name = "X,Y,W,H")]
        rel: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Cut an image into a tile pyramid and a viewer page for OpenSeadragon
    #[command(
        after_help = "Layouts (what OpenSeadragon opens):\n  dzi      NAME.dzi + NAME_files/LEVEL/COL_ROW.jpg (default; 254-px tiles, overlap 1)\n  iiif3    NAME/info.json + NAME/REGION/SIZE/0/default.jpg, IIIF Image API 3 level 0 (512-px tiles)\n  iiif2    the same for IIIF Image API 2.1\n  zoomify  NAME/ImageProperties.xml + NAME/TileGroupN/L-X-Y.jpg\n  xyz      NAME/Z/X/Y.png, OpenSeadragon's openstreetmaps source (256-px PNG)\n  tms      NAME/L/X/Y.png, rows counted from the bottom, the tiledmapservice source\n  legacy   NAME/WxH.jpg, one image per level up to 8192 px a side\n  custom   NAME/{z}/{x}_{y}.jpg (see --template) + NAME.json for a custom getTileUrl\n\nOUTDIR also gets index.html and openseadragon/ (OpenSeadragon 6.1.1): open index.html,\nor serve OUTDIR with any static web server. Description files are written last.\n\nExamples:\n  giga tile pano.kro site/\n  giga tile pano.kro site/ --layout iiif3 --id https://example.org/iiif\n  giga tile pano.kro site/ --layout xyz --skip-blank\n  giga tile pano.kro site/ --resume        # after an interruption"
    )]
    Tile {
        /// The image to tile (any format giga reads)
        input: PathBuf,
        /// The folder to write the pyramid and viewer into (created if missing)
        outdir: PathBuf,
        #[command(flatten)]
        tile: TileArgs,
    },
    /// Paint transparent areas with a smooth continuation of the colour around them
    #[command(
        after_help = "Examples:\n  giga fill pano.kro pano-filled.tif\n  giga fill pano.kro pano-filled.png --keep-alpha\n\nPush-pull in premultiplied colour: holes of any size get the surrounding colour, smoothly.\nOpaque pixels are copied bit for bit; partly transparent ones are blended with the fill by\ntheir alpha. The input is read twice (once to analyse, once to write); memory stays bounded,\nno temporary files are needed."
    )]
    Fill {
        /// The image to fill (gray+alpha or RGBA)
        input: PathBuf,
        /// Where to write the result (format from the extension, or --format)
        output: PathBuf,
        /// Keep the original alpha (only the colour under it changes); default: opaque output
        #[arg(long)]
        keep_alpha: bool,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Crop to the largest rectangle without transparent pixels
    #[command(
        after_help = "Examples:\n  giga autocrop pano.kro pano-cropped.tif\n  giga autocrop pano.kro --print                 # prints X,Y,W,H for giga crop --rect\n  giga autocrop pano.kro print.tif --aspect 3:2 --threshold 0.5\n\nOne streaming pass finds the rectangle (memory: a few bytes per column), a second writes it\n(from KRO, reading only the window). Ties: the larger area, then the topmost, then the\nleftmost, then the shorter rectangle; with --aspect the rectangle is exactly that ratio."
    )]
    Autocrop {
        /// The image to crop (its alpha decides what is kept)
        input: PathBuf,
        /// Where to write the crop (not needed with --print)
        #[arg(required_unless_present = "print")]
        output: Option<PathBuf>,
        /// Pixels count as opaque when alpha >= this fraction of full (0..1; default: fully opaque only)
        #[arg(long, default_value_t = 1.0, value_name = "FRACTION")]
        threshold: f64,
        /// Only rectangles of this width:height ratio, e.g. 16:9
        #[arg(long, value_name = "W:H")]
        aspect: Option<String>,
        /// Print the rectangle as X,Y,W,H instead of writing a crop
        #[arg(long)]
        print: bool,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Serve images over IIIF Image API 3.0 and 2.1 (level 2), with a viewer page each
    #[command(
        after_help = "Examples:\n  giga serve photos/                       # http://127.0.0.1:8080/\n  giga serve --bind 0.0.0.0:8182 pano.tif\n\nEach image is served under its file name without extension:\n  /iiif/3/ID/info.json, /iiif/3/ID/REGION/SIZE/ROTATION/QUALITY.FORMAT (and /iiif/2/...),\n  /view/ID for an OpenSeadragon page, / for the list.\nOnly the files named (or directly inside the folders named) can be reached.\nMulti-resolution TIFFs (giga convert IN OUT.tif --pyramid) are served tile by tile at any size;\nother images are decoded into memory, up to 256 megapixels each. Requests share --memory:\na request waits while others hold what it needs."
    )]
    Serve {
        /// Image files, or folders whose image files are served
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Address and port to listen on
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
        bind: String,
        /// Largest output image, in megapixels (IIIF maxArea), 1-4000
        #[arg(long, default_value_t = 100, value_name = "MP",
              value_parser = clap::value_parser!(u64).range(1..=4000))]
        max_area: u64,
        /// Memory for the images held in memory, the tile caches and the requests in flight,
        /// in GB; requests past it wait (503 after 30 s)
        #[arg(long, default_value_t = 1.5, value_name = "GB", value_parser = parse_gb)]
        memory: f64,
    },
    /// Render an aligned Hugin/PanoTools project (.pto) into one image or a tile pyramid
    #[command(
        after_help = "Examples:\n  giga render pano.pto pano.tif            # tiled deflate (Big)TIFF, RGBA\n  giga render pano.pto pano.kro\n  giga render pano.pto --tiles site/       # straight into a DZI pyramid + viewer\n  giga render pano.pto pano.tif --pyramid  # ready for giga serve and IIPImage\n  giga render pano.pto frame3.tif --frames 3   # one frame remapped, like nona -i 3\n  giga render pano.pto /shared/pano.kro --plan 8      # shards on a cluster (docs/cluster.md):\n  giga render pano.pto /shared/pano.kro --shard 3/8  #   each of 0/8..7/8, anywhere, or --shard auto\n  giga render pano.pto /shared/pano.kro --finish     #   then the KRO appears, as one run writes it\n\nReads the p-line (rectilinear, cylindrical or equirectangular output; size, field of view,\ncrop S, exposure E), i-lines (rectilinear, cylindrical, fisheye and equirectangular lenses;\ny p r, a b c d e, S, Eev Er Eb, vignetting Va-Vd Vx Vy, links like v=0) and the m-line's\ninterpolator. Frame paths are relative to the project file. Exclude (t0), include (t1), stack\n(t2, t3) and lens (t4) masks are applied.\n\nEach output pixel takes the frame whose centre is nearest, with a --feather-pixel transition\n(the coarser structure, with --blend two-band, the default, over 16 times that);\nalpha is 0 where no frame covers the canvas. Rows are rendered top to bottom in bands and\nonly the frames touching the band are decoded, so memory depends on the frames and the\nwidth, not on the canvas's area.\n\n--resume: an interrupted render (Ctrl-C, a crash, a power cut) continues from the last band\non disk and yields the same file. The rows are kept in a KRO with a checkpoint per band: the\noutput itself when it is a .kro, else .OUT.giga-rows.kro beside it (4 bytes a pixel, 8 at\n16-bit), converted into OUT at the end and deleted. Without --resume nothing intermediate is\nwritten. With --tiles, no rows are kept: the pyramid saves a checkpoint every 5 minutes (its\nbands of rows, after its tiles are on disk) in OUTDIR and continues from the last one."
    )]
    Render {
        /// The project file (.pto, as Hugin or PTGui writes it)
        project: PathBuf,
        /// Where to write the panorama (format from the extension: .tif, .kro, .psb, .png, ...)
        #[arg(required_unless_present = "tiles", conflicts_with = "tiles")]
        output: Option<PathBuf>,
        /// Write a tile pyramid into this folder instead (the tiling options below apply)
        #[arg(long, value_name = "OUTDIR")]
        tiles: Option<PathBuf>,
        /// Interpolator; default: the project's (m i0 bicubic, i5 bilinear, i6 nearest)
        #[arg(long, value_enum)]
        interpolator: Option<InterpolatorArg>,
        /// Width of the transition at seams, in output pixels
        #[arg(long, default_value_t = 8.0, value_name = "PIXELS")]
        feather: f64,
        /// How frames are joined: two-band (detail across the --feather transition, structure
        /// coarser than 16 frame pixels across 16 times its width: hides exposure and vignetting
        /// steps left after the photometric correction), multiband (also structure coarser than
        /// 128 px across 128 times the feather, on frames big enough: smoother, ~1.5x the time)
        /// or feather (everything across the feather; fastest)
        #[arg(long, value_enum, default_value_t = BlendArg::TwoBand)]
        blend: BlendArg,
        /// Where seams run: content (nearest frame centre, except where the frames disagree
        /// because something moved: one frame keeps that place whole, the majority where three
        /// or more overlap, and its colours stay out of the wide bands; a pre-pass at reduced
        /// size finds those places) or voronoi (nearest frame centre everywhere: geometry only)
        #[arg(long, value_enum, default_value_t = SeamsArg::Content)]
        seams: SeamsArg,
        /// Most memory for decoded frames at once, in GB; frames past it go to a scratch file
        #[arg(long, default_value_t = 8.0, value_name = "GB")]
        memory: f64,
        /// Folder for that scratch file (unnamed, gone when giga exits); default: the output's folder
        #[arg(long, value_name = "DIR")]
        temp: Option<PathBuf>,
        /// Render only these frames (numbers as in the project, e.g. 0,3,4)
        #[arg(long, value_name = "LIST", value_delimiter = ',')]
        frames: Option<Vec<usize>>,
        /// Render only this rectangle of the canvas, in canvas pixels (overrides the project's S
        /// crop); its pixels equal the same rectangle of a full render
        #[arg(long, value_name = "X,Y,W,H")]
        region: Option<String>,
        /// Don't box-reduce frames that are shrunk onto the canvas (as nona)
        #[arg(long)]
        no_antialias: bool,
        /// TIFF output: write reduced-resolution pages too (a multi-resolution TIFF)
        #[arg(long)]
        pyramid: bool,
        /// TIFF output: always BigTIFF
        #[arg(long)]
        bigtiff: bool,
        /// Shards, step 1: plan N shards of a KRO output (writes .OUT.giga-plan and the
        /// partial file the shards fill, beside OUT on storage every shard sees)
        #[arg(long, value_name = "N", conflicts_with_all = ["shard", "finish", "tiles", "region"])]
        plan: Option<u32>,
        /// Shards, step 2: render shard I of N (I from 0), on any machine, in any order; `auto`
        /// takes I (and N) from Slurm (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT) or a
        /// Kubernetes Indexed Job (JOB_COMPLETION_INDEX)
        #[arg(long, value_name = "I/N|auto", conflicts_with_all = ["finish", "tiles", "region"])]
        shard: Option<String>,
        /// Shards, step 3: check every shard is done (naming those that are not) and make OUT
        #[arg(long, conflicts_with_all = ["tiles", "region"])]
        finish: bool,
        #[command(flatten)]
        tile: TileArgs,
    },
    /// Render a project small, in seconds, with its frames, seams and control points drawn over it
    #[command(
        after_help = "Examples:\n  giga preview pano.pto preview.png                  # 2,000 px wide\n  giga preview pano.pto check.png --outlines --numbers --seams\n  giga preview pano.pto cp.png --points --width 4000 --sidecar cp.json\n\nThe same render as `giga render` (projection, lenses, photometry, seams, blend) on a canvas\nscaled down to --width; frames are shrunk onto it, JPEG frames decoded at 1/2 to 1/8 of\ntheir size, so 1,500 frames take seconds. Overlays: --outlines (each frame's edge),\n--numbers (its number at its centre), --seams (the frame each pixel comes from, tinted, with\nthe seams drawn as the full render chooses them), --points (each control point's two ends\njoined by a line: green under 1 px of residual on the full canvas, yellow under 3, red beyond).\n--sidecar writes the same as JSON (preview pixels; residuals in canvas pixels)."
    )]
    Preview {
        /// The project file (.pto)
        project: PathBuf,
        /// The preview image (.png, .jpg or .tif)
        output: PathBuf,
        /// Width of the preview in pixels (64-16384); never more than the render's
        #[arg(long, default_value_t = 2000, value_name = "PIXELS")]
        width: u32,
        /// Draw each frame's outline
        #[arg(long)]
        outlines: bool,
        /// Draw each frame's number at its centre
        #[arg(long)]
        numbers: bool,
        /// Tint each pixel with the frame it comes from and draw the seams
        #[arg(long)]
        seams: bool,
        /// Draw the control points and their residuals
        #[arg(long)]
        points: bool,
        /// Also write the overlays as JSON to this file
        #[arg(long, value_name = "FILE.json")]
        sidecar: Option<PathBuf>,
        /// No summary line
        #[arg(long, short)]
        quiet: bool,
    },
    /// Convert an image to another format, depth or channel layout
    #[command(
        after_help = "Examples:\n  giga convert pano.kro pano.tif                  # tiled, deflate\n  giga convert pano.kro pano.tif --compression none --bigtiff\n  giga convert pano16.tif pano.jpg --depth 8 --quality 92 --background black\n\nPixels are copied exactly where both formats can hold them. Alpha is flattened onto\n--background only when the output format has no alpha (JPEG) or with --no-alpha."
    )]
    Convert {
        /// The image to convert
        input: PathBuf,
        /// Where to write it (format from the extension, or --format)
        output: PathBuf,
        #[command(flatten)]
        out: OutputArgs,
    },
}

#[derive(Args, Clone)]
pub struct OutputArgs {
    /// Output format (kro, tif, psd, psb, png, jpg, ppm); default: from the output's extension
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Bits per sample of the output: 8, 16 or 32 (float); default: as the input
    #[arg(long, value_enum)]
    pub depth: Option<DepthArg>,
    /// Colour behind transparent pixels when alpha is dropped: white, black, #rrggbb or r,g,b
    #[arg(long, default_value = "white", value_name = "COLOR")]
    pub background: String,
    /// Drop the alpha channel, flattening onto --background
    #[arg(long)]
    pub no_alpha: bool,
    /// Convert to gray (Rec. 601 luma)
    #[arg(long)]
    pub gray: bool,
    /// TIFF: write BigTIFF even when classic TIFF would do (default: only when the file may pass 4 GiB)
    #[arg(long)]
    pub bigtiff: bool,
    /// TIFF: write a pyramid (reduced-resolution pages down to one tile), as IIPImage and Cantaloupe serve
    #[arg(long)]
    pub pyramid: bool,
    /// TIFF compression
    #[arg(long, value_enum, default_value_t = CompressionArg::Deflate)]
    pub compression: CompressionArg,
    /// TIFF tile side in pixels (a multiple of 16, 16-4096)
    #[arg(long, default_value_t = 256, value_name = "PIXELS", value_parser = parse_tiff_tile)]
    pub tile_size: u32,
    /// JPEG quality, 1-100
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,
    /// No progress bar
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args, Clone)]
pub struct TileArgs {
    /// Pyramid layout (default dzi; xyz with --archive)
    #[arg(long, value_enum)]
    pub layout: Option<LayoutArg>,
    /// Tile format: jpg (flattened onto --background), png or webp (lossy, keeping alpha; dzi, zoomify
    /// and custom only); default jpg, png for xyz and tms (OpenSeadragon requests .png there)
    #[arg(long, value_enum)]
    pub format: Option<TileFormatArg>,
    /// Tile side in pixels (1-8192); default 254 for dzi, 512 for iiif, 256 otherwise
    #[arg(long, value_name = "PIXELS")]
    pub tile_size: Option<u32>,
    /// Pixels each tile shares with its neighbours (dzi and custom only); default 1 for dzi
    #[arg(long, value_name = "PIXELS")]
    pub overlap: Option<u32>,
    /// JPEG and WebP quality, 1-100
    #[arg(long, default_value_t = 85, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,
    /// Colour behind transparent pixels in JPEG tiles and the viewer: white, black, #rrggbb or r,g,b
    #[arg(long, default_value = "white", value_name = "COLOR")]
    pub background: String,
    /// Leave out tiles that are fully transparent or entirely the background colour
    #[arg(long)]
    pub skip_blank: bool,
    /// Base name of the pyramid's files; default: the input's file stem
    #[arg(long)]
    pub name: Option<String>,
    /// IIIF: base URL written into info.json as id = BASE_URL/NAME
    #[arg(long, value_name = "BASE_URL", default_value = "http://localhost:8000")]
    pub id: String,
    /// custom: tile path template under OUTDIR/NAME/, with {z}, {x} and {y}
    #[arg(long, value_name = "TEMPLATE")]
    pub template: Option<String>,
    /// Don't write index.html and openseadragon/
    #[arg(long)]
    pub no_viewer: bool,
    /// Keep tiles already written by an interrupted run
    #[arg(long)]
    pub resume: bool,
    /// Write the pyramid as one file instead of a folder of tiles: OUTDIR/NAME.pmtiles (PMTiles v3,
    /// the xyz layout's tiles; default format jpg), which index.html reads with HTTP Range requests
    #[arg(long, value_enum, value_name = "KIND")]
    pub archive: Option<ArchiveKind>,
    /// Draw the overlays of a preview sidecar (`giga preview --sidecar`) over the image in
    /// index.html: frame outlines and numbers, seams, control points (key o shows and hides them)
    #[arg(long, value_name = "FILE.json")]
    pub overlay: Option<PathBuf>,
    /// Fill transparent areas first (as `giga fill`, streamed straight into the tiles)
    #[arg(long)]
    pub fill: bool,
    /// Keep the pixel values of an input with an ICC profile (Adobe RGB, ProPhoto...) instead of
    /// converting them to sRGB, which browsers assume for tiles without a profile
    #[arg(long)]
    pub keep_colors: bool,
    /// No progress bar or summary
    #[arg(long, short)]
    pub quiet: bool,
}
