#!/usr/bin/env python3
"""Image helpers for the integration tests (PIL only).

  imgcmp.py xwd2png IN.xwd OUT.png      convert an Xvfb -fbdir screen (XWD) to PNG
  imgcmp.py notblank IMG [MINCOLORS]    exit 0 if IMG shows something (>= MINCOLORS colours,
                                        some non-black pixels), else 1
  imgcmp.py find SHOT REF               print "X Y" where REF's content sits inside SHOT
  imgcmp.py compare SHOT REF [MAXBAD]   locate REF inside SHOT (aligning the bounding boxes of
                                        their non-black pixels), then compare pixel by pixel;
                                        exit 0 when at most MAXBAD (default 0.5%) of REF's pixels,
                                        and at most 5% of the pixels that are non-black in either
                                        image, differ by more than 24 in a channel, else 1.
SHOT/REF may be .xwd (read as Xvfb writes it) or anything PIL opens.
"""
import struct
import sys

from PIL import Image, ImageChops


def read_xwd(path):
    with open(path, "rb") as f:
        data = f.read()
    hdr = struct.unpack(">25I", data[:100])
    (header_size, version, pix_format, depth, width, height, _xoff, byte_order,
     _bunit, _border, _bpad, bpp, bpl, _vclass, rmask, gmask, bmask, _bprgb,
     _cmapent, ncolors) = hdr[:20]
    if version != 7 or pix_format != 2:
        raise ValueError("%s: unsupported XWD (version %d format %d)" % (path, version, pix_format))
    off = header_size + ncolors * 12
    pix = data[off:off + bpl * height]
    if bpp != 32 or (rmask, gmask, bmask) != (0xFF0000, 0xFF00, 0xFF):
        raise ValueError("%s: unsupported XWD pixel layout bpp=%d depth=%d" % (path, bpp, depth))
    mode = "BGRX" if byte_order == 0 else "XRGB"
    return Image.frombuffer("RGB", (width, height), pix, "raw", mode, bpl, 1).copy()


def load(path):
    if path.endswith(".xwd") or path.endswith("Xvfb_screen0"):
        return read_xwd(path)
    return Image.open(path).convert("RGB")


def nonblack_bbox(img):
    # threshold away near-black noise
    g = img.convert("L").point(lambda v: 255 if v > 16 else 0)
    return g.getbbox()


def locate(shot, ref):
    rb = nonblack_bbox(ref)
    sb = nonblack_bbox(shot)
    if rb is None or sb is None:
        return None
    return (sb[0] - rb[0], sb[1] - rb[1])


def compare(shot, ref):
    pos = locate(shot, ref)
    if pos is None:
        return None, 1.0, 1.0
    x, y = pos
    if x < 0 or y < 0 or x + ref.width > shot.width or y + ref.height > shot.height:
        return pos, 1.0, 1.0
    crop = shot.crop((x, y, x + ref.width, y + ref.height))
    diff = ImageChops.difference(crop, ref).convert("L").point(lambda v: 255 if v > 24 else 0)
    bad = diff.histogram()[255]
    # pixels that are content (not black) in either image
    content = ImageChops.lighter(crop.convert("L"), ref.convert("L")).point(lambda v: 255 if v > 16 else 0)
    ncontent = max(content.histogram()[255], 1)
    return pos, bad / float(ref.width * ref.height), bad / float(ncontent)


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd = argv[1]
    if cmd == "xwd2png":
        read_xwd(argv[2]).save(argv[3])
        return 0
    if cmd == "notblank":
        img = load(argv[2])
        mincolors = int(argv[3]) if len(argv) > 3 else 2
        colors = img.getcolors(1 << 24) or []
        bbox = nonblack_bbox(img)
        print("size=%dx%d colors=%d nonblack_bbox=%s" % (img.width, img.height, len(colors), bbox))
        return 0 if (bbox is not None and len(colors) >= mincolors) else 1
    if cmd == "find":
        pos = locate(load(argv[2]), load(argv[3]))
        if pos is None:
            print("not found")
            return 1
        print("%d %d" % pos)
        return 0
    if cmd == "compare":
        shot, ref = load(argv[2]), load(argv[3])
        maxbad = float(argv[4]) if len(argv) > 4 else 0.005
        pos, bad, badrel = compare(shot, ref)
        print("ref=%dx%d at=%s differing=%.4f%% of all pixels (max %.2f%%), %.2f%% of text pixels (max 5%%)"
              % (ref.width, ref.height, pos, bad * 100, maxbad * 100, badrel * 100))
        return 0 if bad <= maxbad and badrel <= 0.05 else 1
    print("unknown command %s" % cmd, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
