"""docs/gallery.png of the quality table: a row per dataset, a column per recipe; each panel the
learned density exp(-E / T) at the run's temperature on the metrics' grid box (square-rooted so
that weak modes stay visible), 300 data points (white) and 300 of the run's final samples (red).
NumPy and zlib only: the PNG is written by hand and the labels use a built-in 5 x 7 font."""

import struct
import zlib

import numpy as np

# 5 x 7 glyphs, one string of 7 rows of 5 columns each ('#' = ink).
_FONT = {
    "A": ".###.#...##...#######...##...##...#", "B": "####.#...#####.#...##...##...#####.",
    "C": ".###.#...##....#....#....#...#.###.", "D": "####.#...##...##...##...##...#####.",
    "E": "######....####.#....#....#....#####", "F": "######....####.#....#....#....#....",
    "G": ".###.#....#....#.####...##...#.####", "H": "#...##...#######...##...##...##...#",
    "I": ".###...#....#....#....#....#...###.", "J": "..###...#....#....#....##..#..##...",
    "K": "#...##..#.#.#..##...#.#..#..#.#...#", "L": "#....#....#....#....#....#....#####",
    "M": "#...###.###.#.##...##...##...##...#", "N": "#...###..##.#.##..###...##...##...#",
    "O": ".###.#...##...##...##...##...#.###.", "P": "####.#...##...#####.#....#....#....",
    "Q": ".###.#...##...##...##.#.##..#..##.#", "R": "####.#...##...#####.#.#..#..#.#...#",
    "S": ".####.....#.....###.....#....#####.", "T": "#####..#....#....#....#....#....#..",
    "U": "#...##...##...##...##...##...#.###.", "V": "#...##...##...##...##...#.#.#...#..",
    "W": "#...##...##...##.#.##.#.##.#.#.#.#.", "X": "#...##...#.#.#...#...#.#.#...##...#",
    "Y": "#...##...#.#.#...#....#....#....#..", "Z": "#####....#...#...#...#...#....#####",
    "0": ".###.#...##..###.#.###..##...#.###.", "1": "..#...##....#....#....#....#...###.",
    "2": ".###.#...#....#...#...#...#...#####", "3": "#####...#...#.....#.....##...#.###.",
    "4": "...#...##..#.#.#..#.#####...#....#.", "5": "######....####.....#....##...#.###.",
    "6": "..##..#...#....####.#...##...#.###.", "7": "#####....#...#...#...#....#....#...",
    "8": ".###.#...##...#.###.#...##...#.###.", "9": ".###.#...##...#.####....#...#..##..",
    "_": "..............................#####", ".": ".........................##...##...",
    "-": "................###................", " ": "." * 35,
    "=": "..........#####.....#####..........", "(": "...#...#...#....#....#.....#.....#.",
    ")": ".#.....#.....#....#....#...#...#...", "/": ".........#...#...#...#...#.........",
}
_VIRIDIS = np.array([(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)],
                    float)


def text_image(text, scale=2):
    """A white-on-transparent mask (h x w bool) of text in the 5 x 7 font."""
    glyphs = [_FONT.get(ch.upper(), _FONT[" "]).ljust(35, ".") for ch in text]
    mask = np.zeros((7, 6 * len(glyphs)), bool)
    for i, g in enumerate(glyphs):
        mask[:, 6 * i:6 * i + 5] = np.array([c == "#" for c in g]).reshape(7, 5)
    return np.kron(mask, np.ones((scale, scale), bool))


def colour(v):
    """viridis-like colours of values in [0, 1]."""
    v = np.clip(v, 0, 1) * (len(_VIRIDIS) - 1)
    i = np.minimum(v.astype(int), len(_VIRIDIS) - 2)
    f = (v - i)[..., None]
    return (1 - f) * _VIRIDIS[i] + f * _VIRIDIS[i + 1]


def panel(energies, temperature, box, data, samples, size):
    """size x size x 3 uint8: density from grid energies (n x n, x fastest, y up), points."""
    n = energies.shape[0]
    logp = -(energies.astype(float) - np.nanmin(energies)) / temperature
    p = np.exp(logp)
    f = n // size
    p = p[:f * size, :f * size].reshape(size, f, size, f).mean((1, 3))
    p = np.sqrt(p / p.max()) if p.max() > 0 else p
    p = np.round(p * 127) / 127  # 128 levels: the page fits an 8-bit palette PNG
    img = colour(p[::-1])  # row 0 at the top: y = +box
    for pts, rgb in ((data, (255, 255, 255)), (samples, (230, 30, 30))):
        if pts is None or len(pts) == 0:
            continue
        ix = np.round((pts[:, 0] + box) / (2 * box) * (size - 1)).astype(int)
        iy = np.round((box - pts[:, 1]) / (2 * box) * (size - 1)).astype(int)
        ok = (ix >= 0) & (ix < size - 1) & (iy >= 0) & (iy < size - 1) & np.isfinite(pts).all(1)
        for dx in (0, 1):
            for dy in (0, 1):
                img[iy[ok] + dy, ix[ok] + dx] = rgb
    return img.astype(np.uint8)


def write_png(path, rgb):
    """An 8-bit RGB PNG, or a palette PNG when the image has at most 256 colours."""
    h, w, _ = rgb.shape
    colours, index = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)
    if len(colours) <= 256:
        pixels, colour_type = index.astype(np.uint8).reshape(h, w), 3
    else:
        pixels, colour_type = rgb, 2
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return (struct.pack(">I", len(data)) + tag + data +
                struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)))
        if colour_type == 3:
            f.write(chunk(b"PLTE", colours.astype(np.uint8).tobytes()))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))


def compose(path, rows, cols, cells, size=200, pad=6, label_w=200, label_h=30):
    """cells[(row, col)] = size x size x 3 image or None (a grey panel: the run failed)."""
    h = label_h + len(rows) * (size + pad) + pad
    w = label_w + len(cols) * (size + pad) + pad
    img = np.full((h, w, 3), 255, np.uint8)

    def put_text(text, y, x):
        m = text_image(text)
        img[y:y + m.shape[0], x:x + m.shape[1]][m] = (0, 0, 0)

    for j, c in enumerate(cols):
        put_text(c, 8, label_w + j * (size + pad) + pad)
    for i, r in enumerate(rows):
        y = label_h + i * (size + pad) + pad
        put_text(r, y + size // 2 - 7, 6)
        for j, c in enumerate(cols):
            x = label_w + j * (size + pad) + pad
            cell = cells.get((r, c))
            img[y:y + size, x:x + size] = cell if cell is not None else 200
    write_png(path, img)
