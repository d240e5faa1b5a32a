#!/usr/bin/env python3
"""vmgate_page.py: drive vmgate's own page (GET /) in a headless Chromium over DevTools.

usage: vmgate_page.py DEVTOOLS_PORT BASE_URL USER PASS BADPASS VM OTHER_VM OUTDIR

BASE_URL is https://HOST:PORT.  One line per step, then exit 0 (the shell test judges):
  refused TEXT         the page's message after logging in with BADPASS
  list NAME...         the text of every <a> in the VM list after logging in with PASS
  login form gone|shown  whether the login form still shows next to the list
                       (OUTDIR/list.png: a screenshot of the page with the list)
  console W H          VM's link clicked: noVNC connected, canvas W x H saved as OUTDIR/canvas.png
                       (OUTDIR/console.png: a screenshot of the page with the console)
  clipboard sent cut-text|nothing   "hello from the page" typed into the page's clipboard
                       field and sent: whether a ClientCutText went out on the WebSocket
  typed OTHER_VM TEXT  noVNC's RFB pointed by hand at wss://HOST:PORT/vnc/OTHER_VM with the
                       same credentials: "securityfailure REASON", "connected" or "disconnect"
  cookies N            document.cookie's length, storage N: local+session storage items
Exit 1 with "failed ..." when a step times out.

usage: vmgate_page.py power DEVTOOLS_PORT BASE_URL USER PASS VM BUTTON OUT.png
  logs in, opens VM's console, waits up to 5 s for the page's power buttons (shown
  when noVNC raises `capabilities` with power: vmgate sent XVP_INIT) and prints
  "power yes|no" and "buttons LABEL..." (the visible ones); with yes, screenshots
  the page to OUT.png, clicks the button power-BUTTON (shutdown, reboot, reset)
  and prints "console STATE" 2 s later.
"""
import base64
import json
import sys
import time

import websocket

from cdp import Page

VISIBLE = "(() => { const e = document.getElementById(%s); return !!e && !e.hidden; })()"


def screenshot(p, path):
    r = p.call("Page.captureScreenshot", format="png")
    with open(path, "wb") as f:
        f.write(base64.b64decode(r["data"]))


def clipboard_frame(p):
    """What the page sent on the console's WebSocket after its clipboard field's
    button: "cut-text" for a ClientCutText (type 6: legacy text or Extended
    Clipboard), else "nothing" (the Network domain's frame events, 10 s)."""
    def cut_text(msg):
        if msg.get("method") != "Network.webSocketFrameSent":
            return False
        r = msg["params"]["response"]
        return r.get("opcode") == 2 and base64.b64decode(r["payloadData"])[:1] == b"\x06"

    if any(cut_text(m) for m in p.events):     # came while the click was evaluated
        return "cut-text"
    deadline = time.time() + 10
    p.ws.settimeout(1)
    try:
        while time.time() < deadline:
            try:
                if cut_text(json.loads(p.ws.recv())):
                    return "cut-text"
            except websocket.WebSocketTimeoutException:
                continue
        return "nothing"
    finally:
        p.ws.settimeout(60)


def log_in(p, user, password):
    p.js("""(() => {
      document.getElementById('user').value = %s;
      document.getElementById('password').value = %s;
      document.getElementById('login-button').click();
      return true; })()""" % (json.dumps(user), json.dumps(password)))


POWER_SHOWN = "(() => { const e = document.getElementById('power');" \
    " return !!e && !e.hidden && e.offsetParent !== null; })()"


def power(argv):
    port, base, user, pw, vm, button, shot = int(argv[2]), *argv[3:]
    p = Page(port)
    p.call("Page.enable")
    p.call("Emulation.setDeviceMetricsOverride", width=1000, height=620, deviceScaleFactor=1,
           mobile=False)
    p.call("Page.navigate", url=base + "/")
    if not p.wait(VISIBLE % json.dumps("login"), 30):
        print("failed the login form did not show")
        return 1
    log_in(p, user, pw)
    if not p.wait(VISIBLE % json.dumps("vms"), 30):
        print("failed no VM list")
        return 1
    if not p.js("""(() => {
      const a = [...document.querySelectorAll('#vm-list a')].find(a => a.textContent === %s);
      if (a) a.click();
      return !!a; })()""" % json.dumps(vm)):
        print("failed no link for %s" % vm)
        return 1
    if p.wait("document.documentElement.dataset.console || ''", 30) != "connected":
        print("failed console not connected")
        return 1
    shown = bool(p.wait(POWER_SHOWN, 5))
    print("power %s" % ("yes" if shown else "no"), flush=True)
    print("buttons %s" % " ".join(p.js(
        "[...document.querySelectorAll('#power button')].filter(b => b.offsetParent !== null)"
        ".map(b => b.textContent)")))
    if shown:
        screenshot(p, shot)
        p.js("document.getElementById('power-%s').click(); true" % button)
        time.sleep(2)
        print("console %s" % p.js("document.documentElement.dataset.console || ''"))
    return 0


def main(argv):
    if len(argv) == 9 and argv[1] == "power":
        return power(argv)
    if len(argv) != 9:
        raise SystemExit(__doc__)
    port, base, user, pw, badpw, vm, other, out = int(argv[1]), *argv[2:]
    p = Page(port)
    p.call("Page.enable")
    p.call("Network.enable")            # the console's WebSocket frames (clipboard)
    p.call("Emulation.setDeviceMetricsOverride", width=1000, height=620, deviceScaleFactor=1,
           mobile=False)
    p.call("Page.navigate", url=base + "/")
    if not p.wait(VISIBLE % json.dumps("login"), 30):
        print("failed the login form did not show")
        return 1

    log_in(p, user, badpw)
    msg = p.wait("(() => { const t = document.getElementById('login-status').textContent;"
                 " return t && t !== 'Checking…' ? t : ''; })()", 30)
    print("refused %s" % msg)

    log_in(p, user, pw)
    if not p.wait(VISIBLE % json.dumps("vms"), 30):
        print("failed no VM list (status: %s)" % p.js(
            "document.getElementById('login-status').textContent"))
        return 1
    names = p.js("[...document.querySelectorAll('#vm-list a')].map(a => a.textContent)")
    print("list %s" % " ".join(names))
    print("login form %s" % p.js(
        "document.getElementById('login').offsetParent === null ? 'gone' : 'shown'"))
    screenshot(p, out + "/list.png")

    clicked = p.js("""(() => {
      const a = [...document.querySelectorAll('#vm-list a')].find(a => a.textContent === %s);
      if (!a) return false;
      a.click();
      return true; })()""" % json.dumps(vm))
    if not clicked:
        print("failed no link for %s" % vm)
        return 1
    st = p.wait("document.documentElement.dataset.console || ''", 30)
    if st != "connected":
        print("failed console state %r (%s)" % (st, p.js(
            "document.getElementById('console-status').textContent")))
        return 1
    time.sleep(2)           # the first full update
    c = p.js("""(() => {
      const cv = document.querySelector('#screen canvas');
      return cv ? {w: cv.width, h: cv.height, png: cv.toDataURL('image/png')} : null; })()""")
    if not c:
        print("failed no canvas")
        return 1
    with open(out + "/canvas.png", "wb") as f:
        f.write(base64.b64decode(c["png"].split(",", 1)[1]))
    screenshot(p, out + "/console.png")
    print("console %d %d" % (c["w"], c["h"]))

    p.events.clear()
    p.js("""(() => {
      document.getElementById('clip').value = 'hello from the page';
      document.getElementById('clip-send').click();
      return true; })()""")
    print("clipboard sent %s" % clipboard_frame(p))

    typed = p.js("""import('/core/rfb.js').then(m => new Promise(res => {
      const d = document.createElement('div');
      document.body.append(d);
      const r = new m.default(d, 'wss://' + location.host + '/vnc/' + %s,
                              {credentials: {username: %s, password: %s}});
      r.addEventListener('securityfailure', e => res('securityfailure ' + e.detail.reason));
      r.addEventListener('connect', () => res('connected'));
      r.addEventListener('disconnect', () => setTimeout(() => res('disconnect'), 100));
      setTimeout(() => res('timeout'), 20000);
    }))""" % (json.dumps(other), json.dumps(user), json.dumps(pw)))
    print("typed %s %s" % (other, typed))
    print("cookies %d storage %d" % (p.js("document.cookie.length"),
                                     p.js("localStorage.length + sessionStorage.length")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
