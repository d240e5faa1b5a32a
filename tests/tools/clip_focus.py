#!/usr/bin/env python3
"""tests/tools/clip_focus.py — give an X window keyboard focus, without a window manager.

    clip_focus.py DISPLAY NAME-SUBSTRING [TIMEOUT-SECONDS]

Walks the window tree of DISPLAY (libX11 through ctypes: no python-xlib, no
xdotool), takes the first viewable window whose WM_NAME contains the given
substring (e.g. "TigerVNC"), calls XSetInputFocus on it and prints its id.
Retries until TIMEOUT (default 10 s) for the window to appear.  Exit status 0
on success, 1 when no such window appeared.

TigerVNC's vncviewer only sends a local clipboard change (and only asks for
the server's announced clipboard) while its window has keyboard focus; under
a bare Xvfb nothing gives it focus, hence this helper.
"""
import ctypes
import ctypes.util
import sys
import time

X = ctypes.cdll.LoadLibrary(ctypes.util.find_library("X11") or "libX11.so.6")
Window = ctypes.c_ulong
X.XOpenDisplay.restype = ctypes.c_void_p
X.XOpenDisplay.argtypes = [ctypes.c_char_p]
X.XDefaultRootWindow.restype = Window
X.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
X.XQueryTree.argtypes = [ctypes.c_void_p, Window, ctypes.POINTER(Window), ctypes.POINTER(Window),
                         ctypes.POINTER(ctypes.POINTER(Window)), ctypes.POINTER(ctypes.c_uint)]
X.XFetchName.argtypes = [ctypes.c_void_p, Window, ctypes.POINTER(ctypes.c_char_p)]
X.XFree.argtypes = [ctypes.c_void_p]
X.XSetInputFocus.argtypes = [ctypes.c_void_p, Window, ctypes.c_int, ctypes.c_ulong]
X.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
X.XCloseDisplay.argtypes = [ctypes.c_void_p]
X.XRaiseWindow.argtypes = [ctypes.c_void_p, Window]


class XWindowAttributes(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_int), ("width", ctypes.c_int),
                ("height", ctypes.c_int), ("border_width", ctypes.c_int), ("depth", ctypes.c_int),
                ("visual", ctypes.c_void_p), ("root", Window), ("c_class", ctypes.c_int),
                ("bit_gravity", ctypes.c_int), ("win_gravity", ctypes.c_int),
                ("backing_store", ctypes.c_int), ("backing_planes", ctypes.c_ulong),
                ("backing_pixel", ctypes.c_ulong), ("save_under", ctypes.c_int),
                ("colormap", ctypes.c_ulong), ("map_installed", ctypes.c_int),
                ("map_state", ctypes.c_int), ("all_event_masks", ctypes.c_long),
                ("your_event_mask", ctypes.c_long), ("do_not_propagate_mask", ctypes.c_long),
                ("override_redirect", ctypes.c_int), ("screen", ctypes.c_void_p)]


X.XGetWindowAttributes.argtypes = [ctypes.c_void_p, Window, ctypes.POINTER(XWindowAttributes)]
IS_VIEWABLE = 2
REVERT_TO_PARENT = 2
CURRENT_TIME = 0


def find(dpy, w, needle):
    name = ctypes.c_char_p()
    if X.XFetchName(dpy, w, ctypes.byref(name)) and name.value is not None:
        found = needle in name.value
        X.XFree(name)
        if found:
            attr = XWindowAttributes()
            if X.XGetWindowAttributes(dpy, w, ctypes.byref(attr)) and attr.map_state == IS_VIEWABLE:
                return w
    root, parent = Window(), Window()
    children = ctypes.POINTER(Window)()
    n = ctypes.c_uint()
    if not X.XQueryTree(dpy, w, ctypes.byref(root), ctypes.byref(parent), ctypes.byref(children),
                        ctypes.byref(n)):
        return None
    try:
        for i in range(n.value):
            r = find(dpy, children[i], needle)
            if r:
                return r
    finally:
        if children:
            X.XFree(children)
    return None


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    display, needle = sys.argv[1].encode(), sys.argv[2].encode()
    deadline = time.time() + (float(sys.argv[3]) if len(sys.argv) > 3 else 10.0)
    dpy = X.XOpenDisplay(display)
    if not dpy:
        sys.exit("cannot open display %s" % sys.argv[1])
    try:
        while True:
            w = find(dpy, X.XDefaultRootWindow(dpy), needle)
            if w:
                X.XRaiseWindow(dpy, w)
                X.XSetInputFocus(dpy, w, REVERT_TO_PARENT, CURRENT_TIME)
                X.XSync(dpy, 0)
                print("0x%x" % w)
                return 0
            if time.time() > deadline:
                print("no viewable window named *%s* on %s" % (sys.argv[2], sys.argv[1]),
                      file=sys.stderr)
                return 1
            time.sleep(0.2)
    finally:
        X.XCloseDisplay(dpy)


if __name__ == "__main__":
    sys.exit(main())
