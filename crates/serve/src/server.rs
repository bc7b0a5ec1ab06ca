//! The HTTP side (hyper on a small tokio runtime): routes, IIIF responses
//! and their headers. Rendering runs on blocking threads, at most `workers`
//! at once; at most `queue` requests wait, beyond that they get 503.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Response, StatusCode};
use serde_json::json;

use crate::iiif::{self, Limits, Refusal};
use crate::image::Image;

/// How the server runs.
pub struct Options {
    /// Output size limits (IIIF maxWidth, maxHeight, maxArea).
    pub limits: Limits,
    /// Requests rendered at once.
    pub workers: usize,
    /// Requests waiting at most; more get 503.
    pub queue: usize,
    /// Open connections at most; more are answered 503 and closed at once, so
    /// idle sockets can't use up the process's file descriptors.
    pub connections: usize,
    /// How long a client may take to send a request's headers, and may stay
    /// idle between requests.
    pub header_timeout: std::time::Duration,
    /// Bytes for everything: images held in memory, tile caches and requests in flight.
    pub memory: u64,
}

/// What every request handler shares.
pub struct State {
    /// The images by identifier.
    pub images: HashMap<String, Image>,
    /// The options.
    pub opts: Options,
    /// What the requests in flight may hold, together.
    pub budget: crate::memory::Budget,
}

type Reply = Response<Full<Bytes>>;

/// How long a request waits for memory before it is answered 503.
const BUDGET_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// What `handle` needs of a request.
pub struct Incoming {
    /// GET, HEAD, OPTIONS...
    pub method: Method,
    /// The path and query.
    pub url: String,
    /// The Host header (checked before use).
    pub host: String,
    /// The Accept header.
    pub accept: String,
    /// If-None-Match (ETag).
    pub if_none_match: Option<String>,
    /// Range (archives).
    pub range: Option<String>,
}

trait WithHeader {
    fn with_header(self, k: &str, v: &str) -> Self;
}

impl WithHeader for Reply {
    fn with_header(mut self, k: &str, v: &str) -> Self {
        if let (Ok(k), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            hyper::header::HeaderValue::from_str(v),
        ) {
            self.headers_mut().insert(k, v);
        }
        self
    }
}

fn reply(status: u16, body: Vec<u8>, content_type: &str) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).expect("valid status");
    r.with_header("Content-Type", content_type)
        .with_header("Access-Control-Allow-Origin", "*")
}

fn text(status: u16, msg: &str) -> Reply {
    reply(
        status,
        format!("{msg}\n").into_bytes(),
        "text/plain; charset=utf-8",
    )
}

/// Percent-decodes one path segment; None if malformed.
fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Serves on `listener` until the process ends.
pub fn run(listener: std::net::TcpListener, state: State) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let state = Arc::new(state);
        let waiting = Arc::new(tokio::sync::Semaphore::new(state.opts.queue.max(1)));
        let working = Arc::new(tokio::sync::Semaphore::new(state.opts.workers.max(1)));
        let open = Arc::new(tokio::sync::Semaphore::new(state.opts.connections.max(1)));
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of file descriptors, most likely: wait for some to close
                    // instead of spinning on the error.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(open_slot) = open.clone().try_acquire_owned() else {
                tokio::spawn(refuse(stream));
                continue;
            };
            let _ = stream.set_nodelay(true);
            let header_timeout = state.opts.header_timeout;
            let (state, waiting, working) = (state.clone(), waiting.clone(), working.clone());
            tokio::spawn(async move {
                let _open_slot = open_slot;
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (state, waiting, working) =
                            (state.clone(), waiting.clone(), working.clone());
                        async move {
                            let Ok(_queued) = waiting.try_acquire_owned() else {
                                return Ok::<_, Infallible>(
                                    text(503, "busy: too many requests, try again")
                                        .with_header("Retry-After", "1"),
                                );
                            };
                            let get = |k: &str| {
                                req.headers()
                                    .get(k)
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_string)
                            };
                            let incoming = Incoming {
                                method: req.method().clone(),
                                url: req.uri().to_string(),
                                host: get("host").unwrap_or_else(|| "localhost".into()),
                                accept: get("accept").unwrap_or_default(),
                                if_none_match: get("if-none-match"),
                                range: get("range"),
                            };
                            let _working = working.acquire_owned().await.expect("never closed");
                            let resp =
                                tokio::task::spawn_blocking(move || handle(&state, &incoming))
                                    .await
                                    .unwrap_or_else(|_| text(500, "internal error"));
                            Ok(resp)
                        }
                    },
                );
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .serve_connection(io, svc)
                    .await;
            });
        }
    })
}

/// Answers a connection over the cap with 503 and closes it.
async fn refuse(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let busy = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), stream.write_all(busy)).await;
}

/// The Host header if it is a plain host[:port] (it goes into redirects and URLs).
fn clean_host(host: &str) -> Option<&str> {
    let ok = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b));
    ok.then_some(host)
}

fn handle(state: &State, req: &Incoming) -> Reply {
    if req.method == Method::OPTIONS {
        return reply(204, Vec::new(), "text/plain")
            .with_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
            .with_header("Access-Control-Allow-Headers", "*");
    }
    if !matches!(req.method, Method::GET | Method::HEAD) {
        return text(405, "only GET, HEAD and OPTIONS");
    }
    let path = req.url.split(['?', '#']).next().unwrap_or("");
    let Some(host) = clean_host(&req.host) else {
        return text(400, "bad Host header");
    };
    let (host, accept, etag_in) = (
        host.to_string(),
        req.accept.clone(),
        req.if_none_match.clone(),
    );
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        [""] => index(state),
        ["view", id] => match decode(id).filter(|i| state.images.contains_key(i)) {
            Some(id) => viewer(&id),
            None => text(404, "no such image"),
        },
        ["openseadragon", rest @ ..] => {
            let rel = rest.join("/");
            match pyramid::assets::FILES.iter().find(|(p, _)| *p == rel) {
                Some((p, bytes)) => reply(
                    200,
                    bytes.to_vec(),
                    if p.ends_with(".js") {
                        "application/javascript"
                    } else {
                        "image/png"
                    },
                ),
                None => text(404, "not found"),
            }
        }
        ["archive", name] => {
            let id = decode(name).and_then(|n| n.strip_suffix(".pmtiles").map(str::to_string));
            match id
                .and_then(|i| state.images.get(&i))
                .and_then(|i| i.archive.as_ref())
            {
                Some(path) => byte_range(path, req.range.as_deref()),
                None => text(404, "no such archive"),
            }
        }
        ["iiif", v @ ("2" | "3"), id, rest @ ..] => {
            let v3 = *v == "3";
            let Some(id) = decode(id) else {
                return text(400, "malformed identifier");
            };
            let Some(image) = state.images.get(&id) else {
                return text(404, &format!("no image {id:?}"));
            };
            let base = format!("http://{host}/iiif/{v}/{}", encode_id(&id));
            match rest {
                [] | [""] => reply(303, Vec::new(), "text/plain")
                    .with_header("Location", &format!("{base}/info.json")),
                ["info.json"] => info(image, &base, v3, &accept, state.opts.limits),
                [region, size, rotation, qf] => {
                    let parts = [*region, *size, *rotation, *qf].map(|p| p.to_string());
                    let decoded: Vec<String> = parts
                        .iter()
                        .map(|p| decode(p).unwrap_or_default())
                        .collect();
                    let r = iiif::parse(
                        [&decoded[0], &decoded[1], &decoded[2], &decoded[3]],
                        image.width,
                        image.height,
                        v3,
                        state.opts.limits,
                    );
                    match r {
                        Err(Refusal::Bad(m)) => text(400, &m),
                        Err(Refusal::Unsupported(m)) => text(501, &m),
                        Ok(r) => {
                            let etag = format!("\"{}-{}\"", image.version, hash(path));
                            if etag_in.as_deref() == Some(etag.as_str()) {
                                return reply(304, Vec::new(), r.format.mime())
                                    .with_header("ETag", &etag);
                            }
                            let Some(_lease) = state.budget.take(image.cost(&r), BUDGET_WAIT)
                            else {
                                return text(503, "busy: the memory budget is spent, try again")
                                    .with_header("Retry-After", "1");
                            };
                            match image.render(&r) {
                                Ok(bytes) => {
                                    let profile = if v3 {
                                        "<http://iiif.io/api/image/3/level2.json>;rel=\"profile\""
                                    } else {
                                        "<http://iiif.io/api/image/2/level2.json>;rel=\"profile\""
                                    };
                                    let canonical = format!(
                                        "<{base}/{}>;rel=\"canonical\"",
                                        canonical(&r, image, v3, &decoded[3])
                                    );
                                    reply(200, bytes, r.format.mime())
                                        .with_header("Link", &format!("{canonical}, {profile}"))
                                        .with_header("ETag", &etag)
                                        .with_header("Cache-Control", "public, max-age=86400")
                                }
                                Err(m) => text(500, &m),
                            }
                        }
                    }
                }
                _ => text(
                    400,
                    "expected {region}/{size}/{rotation}/{quality}.{format} or info.json",
                ),
            }
        }
        _ => text(404, "not found"),
    }
}

/// Largest byte range answered at once (a viewer asks for 16 KB, a leaf, a tile).
const RANGE_MAX: u64 = 16 << 20;

/// One byte range of a served PMTiles archive (`Range: bytes=A-B`, `A-` or `-N`), so
/// giga's archive viewer and other PMTiles readers can read it from giga serve.
fn byte_range(path: &std::path::Path, range: Option<&str>) -> Reply {
    use std::os::unix::fs::FileExt;
    let Ok(file) = std::fs::File::open(path) else {
        return text(500, "the archive can't be opened");
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let spec = range
        .and_then(|r| r.strip_prefix("bytes="))
        .filter(|r| !r.contains(','));
    let (start, end) = match spec.and_then(|r| r.split_once('-')) {
        Some(("", n)) => match n.parse::<u64>() {
            Ok(n) if n > 0 => (len.saturating_sub(n), len),
            _ => return text(416, "bad range"),
        },
        Some((a, b)) => match (a.parse::<u64>(), b.parse::<u64>().ok()) {
            (Ok(a), b) if a < len && b.is_none_or(|b| b >= a) => {
                (a, b.map_or(len, |b| (b + 1).min(len)))
            }
            _ => {
                return text(416, "the range is outside the archive")
                    .with_header("Content-Range", &format!("bytes */{len}"))
            }
        },
        None if len <= RANGE_MAX => (0, len),
        None => {
            return text(
                400,
                &format!("the archive is {len} bytes: ask for byte ranges (Range: bytes=A-B)"),
            )
        }
    };
    if end - start > RANGE_MAX {
        return text(416, &format!("at most {RANGE_MAX} bytes a request"));
    }
    let mut body = vec![0u8; (end - start) as usize];
    if file.read_exact_at(&mut body, start).is_err() {
        return text(500, "the archive can't be read");
    }
    let status = if range.is_some() { 206 } else { 200 };
    reply(status, body, "application/vnd.pmtiles")
        .with_header("Accept-Ranges", "bytes")
        .with_header(
            "Content-Range",
            &format!("bytes {start}-{}/{len}", end.max(start + 1) - 1),
        )
        .with_header(
            "Access-Control-Expose-Headers",
            "Content-Range, Content-Length, ETag",
        )
}

fn hash(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// Percent-encodes an identifier for use in a URL path segment.
fn encode_id(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn canonical(r: &iiif::Request, image: &Image, v3: bool, qf: &str) -> String {
    let region = if (r.x, r.y, r.w, r.h) == (0, 0, image.width, image.height) {
        "full".to_string()
    } else {
        format!("{},{},{},{}", r.x, r.y, r.w, r.h)
    };
    let size = if v3 {
        if (r.out_w, r.out_h) == (r.w, r.h) {
            "max".to_string()
        } else {
            format!("{},{}", r.out_w, r.out_h)
        }
    } else if (r.out_w, r.out_h) == (r.w, r.h) {
        "full".to_string()
    } else {
        format!("{},", r.out_w)
    };
    let rot = format!("{}{}", if r.mirror { "!" } else { "" }, r.rotation);
    let qf = qf.replacen("color.", "default.", 1);
    format!("{region}/{size}/{rot}/{qf}")
}

fn info(image: &Image, base: &str, v3: bool, accept: &str, limits: Limits) -> Reply {
    let sizes: Vec<serde_json::Value> = image
        .levels
        .iter()
        .rev()
        .filter(|l| l.width.max(l.height) <= 4096)
        .map(|l| json!({"width": l.width, "height": l.height}))
        .collect();
    let factors: Vec<u64> = (0..image.levels.len()).map(|k| 1u64 << k).collect();
    let tiles = json!([{"width": 512, "height": 512, "scaleFactors": factors}]);
    let body = if v3 {
        json!({
            "@context": "http://iiif.io/api/image/3/context.json",
            "id": base,
            "type": "ImageService3",
            "protocol": "http://iiif.io/api/image",
            "profile": "level2",
            "width": image.width,
            "height": image.height,
            "maxWidth": limits.max_width,
            "maxHeight": limits.max_height,
            "maxArea": limits.max_area,
            "sizes": sizes,
            "tiles": tiles,
            "extraQualities": ["bitonal"],
            "extraFormats": ["webp"],
            "extraFeatures": ["mirroring", "sizeUpscaling", "canonicalLinkHeader", "profileLinkHeader"],
        })
    } else {
        json!({
            "@context": "http://iiif.io/api/image/2/context.json",
            "@id": base,
            "protocol": "http://iiif.io/api/image",
            "width": image.width,
            "height": image.height,
            "sizes": sizes,
            "tiles": tiles,
            "profile": ["http://iiif.io/api/image/2/level2.json", {
                "formats": ["jpg", "png", "webp"],
                "qualities": ["default", "color", "gray", "bitonal"],
                "supports": ["mirroring", "rotationBy90s", "sizeAboveFull", "regionSquare", "canonicalLinkHeader", "profileLinkHeader", "cors", "jsonldMediaType", "baseUriRedirect"],
                "maxWidth": limits.max_width, "maxHeight": limits.max_height, "maxArea": limits.max_area,
            }],
        })
    };
    let ld = accept.contains("application/ld+json");
    let ctype = match (ld, v3) {
        (true, true) => "application/ld+json;profile=\"http://iiif.io/api/image/3/context.json\"",
        (true, false) => "application/ld+json;profile=\"http://iiif.io/api/image/2/context.json\"",
        _ => "application/json",
    };
    let profile = if v3 {
        "<http://iiif.io/api/image/3/level2.json>;rel=\"profile\""
    } else {
        "<http://iiif.io/api/image/2/level2.json>;rel=\"profile\""
    };
    reply(200, format!("{body:#}\n").into_bytes(), ctype).with_header("Link", profile)
}

fn index(state: &State) -> Reply {
    let mut ids: Vec<&String> = state.images.keys().collect();
    ids.sort();
    let items: String = ids
        .iter()
        .map(|id| {
            let i = &state.images[*id];
            let e = encode_id(id);
            format!("<li><a href=\"/view/{e}\">{}</a> {}x{} &middot; <a href=\"/iiif/3/{e}/info.json\">IIIF 3</a> &middot; <a href=\"/iiif/2/{e}/info.json\">IIIF 2</a></li>\n", html(id), i.width, i.height)
        })
        .collect();
    let page = format!("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>giga serve</title></head><body><h1>Images</h1><ul>\n{items}</ul></body></html>\n");
    reply(200, page.into_bytes(), "text/html; charset=utf-8")
}

fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn viewer(id: &str) -> Reply {
    let url = format!("/iiif/3/{}/info.json", encode_id(id));
    let page = format!(
        r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>html, body {{ margin: 0; height: 100%; background: #fff; }} #viewer {{ width: 100%; height: 100%; }}</style></head>
<body><div id="viewer"></div>
<script src="/openseadragon/openseadragon.min.js"></script>
<script>
window.viewer = OpenSeadragon({{ id: "viewer", prefixUrl: "/openseadragon/images/", tileSources: "{url}", showNavigator: true }});
</script></body></html>
"#,
        title = html(id)
    );
    reply(200, page.into_bytes(), "text/html; charset=utf-8")
}
