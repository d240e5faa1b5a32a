#!/usr/bin/python3
"""A scripted SPICE viewer on spice-gtk (GObject introspection), for the
clipboard and channel tests.  Run it with /usr/bin/python3 (needs python3-gi
and gir1.2-spiceclientglib-2.0); the CA comes from SSL_CERT_FILE.

  spice_clip.py URI PASSWORD get [SECONDS]
      wait for the guest's clipboard grab, request its text and print
      "GOT bytes=N sha256=HEX type=T"; exit 3 if no grab ("NO GRAB") or no
      data ("NO DATA") arrives in time.
  spice_clip.py URI PASSWORD put FILE [SECONDS]
      grab the clipboard with FILE's bytes as UTF-8 text; answer the guest's
      requests; print "SERVED bytes=N" for each, then run until SECONDS.
  spice_clip.py URI PASSWORD stall N [SECONDS]
      when the guest grabs, grab the viewer's clipboard N times (N agent
      messages; a gateway that drops them must give the tokens back), then
      request the guest's text as "get" does.
  spice_clip.py URI PASSWORD channels [SECONDS]
      connect every channel the server lists; print "OPENED type:id" for
      each and "ALL n" once all are open, then exit 0.
Every run prints "MAIN OPENED" or "ERROR event N" (channel events: 23 = auth
failed) and exits 2 on an error event.  Always bounded by SECONDS (default 20).
"""
import ctypes
import hashlib
import sys

import gi
gi.require_version("SpiceClientGLib", "2.0")
from gi.repository import GLib, GObject, SpiceClientGLib  # noqa: E402

SEL = 0          # VD_AGENT_CLIPBOARD_SELECTION_CLIPBOARD
UTF8 = 1


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 64
    uri, password, mode = argv[1], argv[2], argv[3]
    rest = argv[4:]
    data = b""
    ngrabs = 0
    if mode == "put":
        with open(rest[0], "rb") as f:
            data = f.read()
        rest = rest[1:]
    elif mode == "stall":
        ngrabs = int(rest[0])
        rest = rest[1:]
    secs = float(rest[0]) if rest else 20.0
    loop = GLib.MainLoop()
    state = {"rc": 3, "main": None, "grabbed": False, "opened": set(), "channels": set(),
             "requested": False}

    def finish(rc):
        state["rc"] = rc
        loop.quit()
        return False

    def on_event(ch, ev):
        t = ch.get_property("channel-type")
        i = ch.get_property("channel-id")
        if ev == SpiceClientGLib.ChannelEvent.OPENED:
            state["opened"].add((t, i))
            if isinstance(ch, SpiceClientGLib.MainChannel):
                print("MAIN OPENED", flush=True)
            if mode == "channels":
                print("OPENED %d:%d" % (t, i), flush=True)
                GLib.timeout_add(1500, check_all)
        elif int(ev) >= 20:
            print("ERROR event %d on channel %d:%d" % (int(ev), t, i), flush=True)
            finish(2)

    def check_all():
        if state["channels"] and state["channels"] <= state["opened"]:
            print("ALL %d" % len(state["opened"]), flush=True)
            finish(0)
        return False

    def on_grab(main, sel, types, ntypes):
        print("GUEST GRAB", flush=True)
        if mode == "stall" and not state["requested"]:
            for _ in range(ngrabs):
                main.clipboard_selection_grab(SEL, [UTF8])
            print("GRABBED %d times" % ngrabs, flush=True)
        if mode in ("get", "stall") and not state["requested"]:
            state["requested"] = True
            main.clipboard_selection_request(sel, UTF8)
        return True

    def on_selection(main, sel, typ, ptr, size):
        raw = ctypes.string_at(ptr, size) if size else b""
        if raw.endswith(b"\0"):
            raw = raw[:-1]
        print("GOT bytes=%d sha256=%s type=%d" % (len(raw), hashlib.sha256(raw).hexdigest(), typ),
              flush=True)
        if mode in ("get", "stall"):
            finish(0 if typ == UTF8 else 4)

    def on_request(main, sel, typ):
        main.clipboard_selection_notify(sel, UTF8, data)
        print("SERVED bytes=%d" % len(data), flush=True)
        return True

    def try_grab():
        main = state["main"]
        if main is None or not main.get_property("agent-connected"):
            return True
        if not state["grabbed"]:
            state["grabbed"] = True
            main.clipboard_selection_grab(SEL, [UTF8])
            print("GRABBED", flush=True)
        return False

    def on_new(session, ch):
        GObject.Object.connect(ch, "channel-event", on_event)
        t = ch.get_property("channel-type")
        i = ch.get_property("channel-id")
        if isinstance(ch, SpiceClientGLib.MainChannel):
            state["main"] = ch
            GObject.Object.connect(ch, "main-clipboard-selection-grab", on_grab)
            GObject.Object.connect(ch, "main-clipboard-selection", on_selection)
            GObject.Object.connect(ch, "main-clipboard-selection-request", on_request)
            if mode == "put":
                GLib.timeout_add(300, try_grab)
        else:
            state["channels"].add((t, i))
            if mode == "channels":
                SpiceClientGLib.Channel.connect(ch)

    session = SpiceClientGLib.Session()
    session.set_property("uri", uri)
    session.set_property("password", password)
    GObject.Object.connect(session, "channel-new", on_new)
    if not SpiceClientGLib.Session.connect(session):
        print("ERROR cannot connect", flush=True)
        return 2

    def timeout():
        if mode in ("get", "stall"):
            print("NO DATA" if state["requested"] else "NO GRAB", flush=True)
            finish(3)
        elif mode == "put":
            finish(0 if state["grabbed"] else 3)
        else:
            print("TIMEOUT opened=%d listed=%d" % (len(state["opened"]), len(state["channels"])),
                  flush=True)
            finish(3)
        return False

    GLib.timeout_add(int(secs * 1000), timeout)
    loop.run()
    session.disconnect()
    return state["rc"]


if __name__ == "__main__":
    sys.exit(main(sys.argv))
