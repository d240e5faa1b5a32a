#!/usr/bin/env python3
"""cdp.py: drive a headless Chromium over the DevTools protocol (python3-websocket).

usage: cdp.py PORT novnc URL USER PASS OUT.png  -> opens URL (noVNC's vnc.html), answers its
                                                   credentials dialog, waits for the connected
                                                   state or a failure, prints one line:
                                                   "connected W H" (the canvas, saved as OUT.png)
                                                   or "failed STATUS-TEXT"

       cdp.py PORT novnc-power URL USER PASS BUTTON
                                                -> the same login, then waits up to 5 s
                                                   for noVNC's power button (shown when the
                                                   server sent XVP_INIT) and prints
                                                   "power yes|no"; with yes, clicks it and
                                                   then BUTTON (shutdown, reboot, reset)

Chromium must run with --remote-debugging-port=PORT.  The DevTools socket is
opened without an Origin header (Chromium refuses foreign origins there).
"""
import base64
import collections
import json
import sys
import time
import urllib.request

import websocket


class Page:
    def __init__(self, port):
        deadline = time.time() + 30
        while True:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=5) as r:
                    targets = json.load(r)
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise SystemExit("error no DevTools page on port %d" % port)
            time.sleep(0.2)
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"],
                                              suppress_origin=True, timeout=60)
        self.next_id = 0
        self.events = collections.deque(maxlen=1000)

    def call(self, method, **params):
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.events.append(msg)     # events that came meanwhile (last 1000)
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})

    def js(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError("JS error in %r: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    def wait(self, expr, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                v = self.js(expr)
            except RuntimeError:
                v = None                # the page is being replaced
            if v:
                return v
            time.sleep(0.2)
        return None


STATE = """(() => {
  if (!document.documentElement) return '';
  const c = document.documentElement.classList;
  const st = document.getElementById('noVNC_status');
  const dlg = document.getElementById('noVNC_credentials_dlg');
  if (c.contains('noVNC_connected')) return 'connected';
  if (dlg && dlg.classList.contains('noVNC_open')) return 'credentials';
  if (st && st.classList.contains('noVNC_status_error')) return 'failed ' + st.textContent;
  return '';
})()"""

CANVAS = """(() => {
  const cv = document.querySelector('#noVNC_container canvas');
  if (!cv) return null;
  return {w: cv.width, h: cv.height, png: cv.toDataURL('image/png')};
})()"""


def novnc(port, url, user, password, out):
    p = Page(port)
    p.call("Page.enable")
    p.call("Page.navigate", url=url)
    state = p.wait(STATE, 30)
    if state == "credentials":
        p.js("""(() => {
          document.getElementById('noVNC_username_input').value = %s;
          document.getElementById('noVNC_password_input').value = %s;
          document.getElementById('noVNC_credentials_button').click();
          return true; })()""" % (json.dumps(user), json.dumps(password)))
        time.sleep(0.3)
        state = p.wait(STATE + " .replace(/^credentials$/, '')", 30)
    if not state:
        print("failed timeout (status: %s)" % p.js(
            "(document.getElementById('noVNC_status')||{}).textContent"))
        return 1
    if state != "connected":
        print(state)
        return 0
    # give the first full update time to land, then read the canvas
    time.sleep(2)
    c = p.js(CANVAS)
    if not c:
        print("failed no canvas")
        return 1
    with open(out, "wb") as f:
        f.write(base64.b64decode(c["png"].split(",", 1)[1]))
    print("connected %d %d" % (c["w"], c["h"]))
    return 0


POWER_SHOWN = """(() => {
  const b = document.getElementById('noVNC_power_button');
  return !!b && !b.classList.contains('noVNC_hidden');
})()"""


def novnc_power(port, url, user, password, button):
    p = Page(port)
    p.call("Page.enable")
    p.call("Page.navigate", url=url)
    state = p.wait(STATE, 30)
    if state == "credentials":
        p.js("""(() => {
          document.getElementById('noVNC_username_input').value = %s;
          document.getElementById('noVNC_password_input').value = %s;
          document.getElementById('noVNC_credentials_button').click();
          return true; })()""" % (json.dumps(user), json.dumps(password)))
        time.sleep(0.3)
        state = p.wait(STATE + " .replace(/^credentials$/, '')", 30)
    if state != "connected":
        print("failed %s" % state)
        return 1
    shown = bool(p.wait(POWER_SHOWN, 5))
    print("power %s" % ("yes" if shown else "no"), flush=True)
    if shown:
        p.js("document.getElementById('noVNC_power_button').click(); true")
        time.sleep(0.3)
        p.js("document.getElementById('noVNC_%s_button').click(); true" % button)
        time.sleep(2)
    print("still %s" % (p.js(STATE) or "unknown"))
    return 0


def main(argv):
    if len(argv) == 7 and argv[2] == "novnc-power":
        return novnc_power(int(argv[1]), argv[3], argv[4], argv[5], argv[6])
    if len(argv) == 7 and argv[2] == "novnc":
        return novnc(int(argv[1]), argv[3], argv[4], argv[5], argv[6])
    raise SystemExit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
