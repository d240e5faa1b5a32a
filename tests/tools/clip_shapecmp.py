#!/usr/bin/env python3
"""tests/tools/clip_shapecmp.py — compare two screens by shape only.

    clip_shapecmp.py SHOT REF [MAXBAD]

Like `imgcmp.py compare`, but both images are first reduced to black and
white (a pixel is "on" when its luminance is above 16).  For viewers in a
very low colour mode (TigerVNC -LowColorLevel=0: one bit per channel), where
SeaBIOS's grey text comes out white, so colours cannot be compared but the
text must still be where QEMU drew it.  Exit 0 when they match.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imgcmp  # noqa: E402


def shape(img):
    return img.convert("L").point(lambda v: 255 if v > 16 else 0).convert("RGB")


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    shot, ref = shape(imgcmp.load(argv[1])), shape(imgcmp.load(argv[2]))
    maxbad = float(argv[3]) if len(argv) > 3 else 0.005
    pos, bad, badrel = imgcmp.compare(shot, ref)
    print("shape: ref=%dx%d at=%s differing=%.4f%% of all pixels (max %.2f%%), %.2f%% of text pixels (max 5%%)"
          % (ref.width, ref.height, pos, bad * 100, maxbad * 100, badrel * 100))
    return 0 if bad <= maxbad and badrel <= 0.05 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
