// vmgate's page: log in, list the VMs this user may open, open one with noVNC.
//
// The credentials live in this module's memory only: GET /api/vms carries
// them in an Authorization header set here (the server never asks the
// browser for Basic credentials, so there is no prompt and nothing is
// cached by the browser), and the console's WebSocket gets them through
// noVNC's RFB constructor (VeNCrypt Plain inside the TLS of wss://).  No
// cookie, no token, no storage.
import RFB from '/core/rfb.js';

const $ = (id) => document.getElementById(id);
let creds = null;      // {username, password} after a successful login
let rfb = null;

function show(section) {
  $('login').hidden = section !== 'login';
  $('vms').hidden = section !== 'vms';
  $('console').hidden = section !== 'console';
}

// base64 of the UTF-8 bytes (btoa takes Latin-1 only)
function b64utf8(s) {
  let bin = '';
  for (const b of new TextEncoder().encode(s)) bin += String.fromCharCode(b);
  return btoa(bin);
}

async function login(ev) {
  ev.preventDefault();
  const username = $('user').value, password = $('password').value;
  $('login-status').textContent = 'Checking…';
  $('login-button').disabled = true;
  let res;
  try {
    res = await fetch('/api/vms', {
      headers: { 'Authorization': 'Basic ' + b64utf8(username + ':' + password) },
      cache: 'no-store', credentials: 'omit',
    });
  } catch (e) {
    $('login-status').textContent = 'Cannot reach the server: ' + e.message;
    $('login-button').disabled = false;
    return;
  }
  $('login-button').disabled = false;
  if (res.status === 401) {
    $('login-status').textContent = 'Login refused: wrong user name or password.';
    $('password').value = '';
    return;
  }
  if (!res.ok) {
    $('login-status').textContent = 'The server refused the request (' + res.status + ').';
    return;
  }
  const answer = await res.json();
  creds = { username, password };
  $('password').value = '';
  $('login-status').textContent = '';
  listVms(answer);
}

function listVms(answer) {
  $('who').textContent = answer.user;
  const list = $('vm-list');
  list.replaceChildren();
  for (const name of answer.vms) {
    const a = document.createElement('a');
    a.href = '#' + encodeURIComponent(name);
    a.textContent = name;
    a.addEventListener('click', (ev) => { ev.preventDefault(); openConsole(name); });
    const li = document.createElement('li');
    li.append(a);
    list.append(li);
  }
  $('vms-status').textContent = answer.vms.length ? (answer.truncated ? 'Only the first '
      + answer.vms.length + ' are listed.' : '') : 'You may not open any VM.';
  show('vms');
}

function openConsole(name) {
  closeConsole();
  $('console-name').textContent = name;
  $('console-status').textContent = 'Connecting…';
  show('console');
  const url = 'wss://' + location.host + '/vnc/' + encodeURIComponent(name);
  rfb = new RFB($('screen'), url, { credentials: creds });
  rfb.scaleViewport = false;
  rfb.resizeSession = false;
  rfb.addEventListener('connect', () => {
    $('console-status').textContent = 'Connected';
    document.documentElement.dataset.console = 'connected';
  });
  // noVNC raises this once vmgate has sent XVP_INIT, which it does only for a
  // user with power rights on this VM: the buttons stay hidden for everyone else
  rfb.addEventListener('capabilities', (e) => {
    $('power').hidden = !e.detail.capabilities.power;
  });
  rfb.addEventListener('clipboard', (e) => { $('clip').value = e.detail.text; });
  rfb.addEventListener('securityfailure', (e) => {
    $('console-status').textContent = 'Refused: ' + (e.detail.reason || 'authentication failed');
    document.documentElement.dataset.console = 'refused';
  });
  rfb.addEventListener('disconnect', (e) => {
    $('power').hidden = true;
    if (document.documentElement.dataset.console !== 'refused')
      $('console-status').textContent = e.detail.clean ? 'Disconnected' : 'Connection lost';
    document.documentElement.dataset.console = 'closed';
  });
}

function closeConsole() {
  $('power').hidden = true;
  if (rfb) {
    rfb.disconnect();
    rfb = null;
  }
  $('screen').replaceChildren();
  delete document.documentElement.dataset.console;
}

function logout() {
  closeConsole();
  creds = null;
  $('who').textContent = '';
  $('vm-list').replaceChildren();
  show('login');
}

// the VM's clipboard policy (clipboard =) decides what passes; vmgate audits it
function sendClipboard(ev) {
  ev.preventDefault();
  if (rfb) rfb.clipboardPasteFrom($('clip').value);
}

// XVP shutdown / reboot / reset (vmgate: system_powerdown, the guest agent's
// reboot, system_reset; a refusal comes back as XVP_FAIL and is logged there)
function power(action, label) {
  if (!rfb) return;
  $('console-status').textContent = label + ' sent';
  if (action === 'shutdown') rfb.machineShutdown();
  else if (action === 'reboot') rfb.machineReboot();
  else rfb.machineReset();
}

$('login').addEventListener('submit', login);
$('power-shutdown').addEventListener('click', () => power('shutdown', 'Shutdown'));
$('power-reboot').addEventListener('click', () => power('reboot', 'Reboot'));
$('power-reset').addEventListener('click', () => power('reset', 'Reset'));
$('clip-form').addEventListener('submit', sendClipboard);
$('back').addEventListener('click', () => { closeConsole(); show('vms'); });
$('logout').addEventListener('click', logout);
show('login');
