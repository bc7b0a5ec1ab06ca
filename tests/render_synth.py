"""A synthetic panorama project with a known truth (as in docs/spec/render-background.md §2):
a real photo is taken as an equirectangular scene, and rectilinear (or fisheye) frames
are rendered from it with numpy, written independently of giga from the PanoTools
model: rotation, radial distortion a/b/c, shift d/e, exposure, white balance and
vignetting with a linear response. The p-line is the scene's own grid, so every
output pixel has a known true value."""
from pathlib import Path

import numpy as np
from PIL import Image


def rotation(y, p, r):
    y, p, r = np.radians([y, p, r])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rp = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rr = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return ry @ rp @ rr


def bilinear(img, x, y):
    h, w, _ = img.shape
    x = np.clip(x, 0, w - 1.001)
    y = np.clip(y, 0, h - 1.001)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    a, b = img[y0, x0], img[y0, x0 + 1]
    c, d = img[y0 + 1, x0], img[y0 + 1, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


# yaw, pitch, roll, Eev, Er, Eb, Vb: six frames in two rows, overlapping by about a third.
FRAMES = [
    (-31, 13, 0.5, 0.0, 1.0, 1.0, -0.25),
    (0, 14, -1.0, 0.3, 1.05, 0.95, -0.25),
    (31, 13, 1.5, 0.6, 1.0, 1.0, -0.25),
    (-31, -13, 0.0, 0.2, 0.95, 1.05, -0.25),
    (0, -14, 1.0, 0.0, 1.0, 1.0, -0.25),
    (31, -13, -0.5, 0.4, 1.0, 1.0, -0.25),
]
LENS = dict(a=0.01, b=-0.02, c=0.005, d=3.0, e=-2.0)


def grid(cols, rows, hfov, vfov, overlap=1 / 3, seed=1):
    """Frames in rows and columns covering about hfov x vfov degrees (each frame's own
    field is set by make's hfov), with small random exposure and white-balance changes."""
    rng = np.random.default_rng(seed)
    out = []
    for j in range(rows):
        for i in range(cols):
            yaw = -hfov / 2 + hfov * (i + 0.5) / cols
            pitch = vfov / 2 - vfov * (j + 0.5) / rows
            out.append((round(yaw, 3), round(pitch, 3), round(rng.uniform(-1, 1), 2), round(rng.uniform(0, 0.5), 2), round(rng.uniform(0.95, 1.05), 3), round(rng.uniform(0.95, 1.05), 3), -0.2))
    return out


def make(photo_path, out_dir, frame_w=800, frame_h=600, hfov=50.0, scene_fov=(120.0, 90.0), canvas_scale=0.5, linear=True, lens=0, frames=None, ext="png", paint=None):
    """Writes frames frame0.png.. and project.pto into out_dir; returns (pto path, truth array
    on the canvas grid as float RGB 0..255). canvas_scale None: the canvas's scale matches the
    frames' centre (1 canvas pixel per frame pixel). paint(k, cx, cy, L), if given, returns
    what frame k sees, from the scene's values L at canvas positions (cx, cy) of its pixels:
    objects present when one frame was shot and not the others."""
    frames = FRAMES if frames is None else frames
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scene = np.asarray(Image.open(photo_path).convert("RGB"), dtype=np.float64)
    sh, sw, _ = scene.shape
    sv = np.radians(scene_fov[0])
    sd = sw / sv  # scene pixels per radian
    a, b, c, d, e = (LENS[k] for k in "abcde")
    focal = frame_w / (2 * np.tan(np.radians(hfov) / 2)) if lens == 0 else frame_w / np.radians(hfov)
    norm = min(frame_w, frame_h) / 2
    X, Y = np.meshgrid(np.arange(frame_w, dtype=np.float64), np.arange(frame_h, dtype=np.float64))
    uo, to = X - ((frame_w - 1) / 2 + d), Y - ((frame_h - 1) / 2 + e)
    ro = np.hypot(uo, to) / norm
    rho = ro.copy()
    for _ in range(30):  # invert rho * s(rho) = ro
        s = ((a * rho + b) * rho + c) * rho + (1 - a - b - c)
        ds = ((4 * a * rho + 3 * b) * rho + 2 * c) * rho + (1 - a - b - c)
        rho -= (rho * s - ro) / ds
    s = np.where(ro > 0, ro / np.maximum(rho, 1e-12), 1.0)
    u, t = uo / s / focal, to / s / focal
    if lens == 0:
        cam = np.stack([u, t, np.ones_like(u)], -1)
        cam /= np.linalg.norm(cam, axis=-1, keepdims=True)
    else:  # equidistant fisheye
        th = np.hypot(u, t)
        k = np.where(th > 0, np.sin(th) / np.maximum(th, 1e-12), 1.0)
        cam = np.stack([u * k, t * k, np.cos(th)], -1)
    if canvas_scale is None:
        canvas_scale = focal / sd
    lines = [
        "# giga synthetic test project",
        f"p f2 w{int(sw * canvas_scale)} h{int(sh * canvas_scale)} v{scene_fov[0]} E0 R0 n\"TIFF_m c:NONE\"",
        "m i0",
    ]
    for k, (yaw, pitch, roll, eev, er, eb, vb) in enumerate(frames):
        world = cam @ rotation(yaw, pitch, roll).T
        lam = np.arctan2(world[..., 0], world[..., 2])
        phi = np.arcsin(np.clip(-world[..., 1], -1, 1))
        sx, sy = lam * sd + (sw - 1) / 2, -phi * sd + (sh - 1) / 2
        L = bilinear(scene, sx, sy)
        if paint is not None:
            cw, ch = int(sw * canvas_scale), int(sh * canvas_scale)
            L = paint(k, (sx + 0.5) * cw / sw - 0.5, (sy + 0.5) * ch / sh - 0.5, L)
        r2 = ((X - frame_w / 2) ** 2 + (Y - frame_h / 2) ** 2) / (frame_w**2 / 4 + frame_h**2 / 4)
        gain = 2.0 ** -eev * (1 + vb * r2)
        px = L * gain[..., None] * np.array([er, 1.0, eb])
        if not linear:
            px = 255 * (px / 255) ** (1 / 2.2)
        Image.fromarray(np.clip(px + 0.5, 0, 255).astype(np.uint8)).save(out_dir / f"frame{k}.{ext}", **({"quality": 92} if ext == "jpg" else {}))
        v = f"v{hfov}" if k == 0 else "v=0"
        lensd = " ".join(f"{n}{LENS[n]}" if k == 0 else f"{n}=0" for n in "abcde")
        rt = "Rt1 " if linear else ""
        lines.append(
            f"i w{frame_w} h{frame_h} f{lens} {v} {rt}Ra0 Rb0 Rc0 Rd0 Re0 Eev{eev} Er{er} Eb{eb} r{roll} p{pitch} y{yaw} "
            f"TrX0 TrY0 TrZ0 j0 {lensd} g0 t0 Va1 Vb{vb} Vc0 Vd0 Vx0 Vy0 Vm5 n\"frame{k}.{ext}\""
        )
    pto = out_dir / "project.pto"
    pto.write_text("\n".join(lines) + "\n")
    if canvas_scale * sw * canvas_scale * sh > 50e6:
        return pto, None  # no truth for big canvases
    truth = np.asarray(
        Image.fromarray(scene.astype(np.uint8)).resize((int(sw * canvas_scale), int(sh * canvas_scale)), Image.BILINEAR), dtype=np.float64
    )
    return pto, truth


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3:
        sys.exit("usage: render_synth.py PHOTO OUTDIR   (writes OUTDIR/frame*.png and OUTDIR/project.pto)")
    print(make(sys.argv[1], sys.argv[2])[0])
