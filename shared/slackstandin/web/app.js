// The local Slack page. The stand-in draws every message and modal (Go,
// html/template); this script only swaps its fragments in, formats dates
// in the reader's time zone, and turns what the person does into the
// stand-in's JSON calls, which send the app what Slack would send.
'use strict';

const $ = (sel) => document.querySelector(sel);
const WATCH = 'watch';
const view = { as: '', channel: '', version: -1, asName: '' };
let shown = { channelHTML: null, modalKey: null, modalsHTML: null, callsHTML: null };
let clientErrors = {}; // the modal's errors from Slack's client checks, kept until the next submit
let seen = {};         // unread badges: items seen per person and conversation
let inflight = false, again = false;

// ---- where we are: the URL's hash holds who and which conversation ------

function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  view.as = p.get('as') || '';
  view.channel = p.get('channel') || '';
}

function writeHash() {
  const p = new URLSearchParams();
  p.set('as', view.as || WATCH);
  if (view.channel) p.set('channel', view.channel);
  const h = '#' + p.toString();
  if (location.hash !== h) history.replaceState(null, '', h);
}

// ---- talking to the stand-in --------------------------------------------

async function call(path, body) {
  const res = await fetch(path, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  let data = {};
  try { data = await res.json(); } catch (_) { /* an empty or non-JSON answer */ }
  return { status: res.status, ok: res.ok, data };
}

function toast(text) {
  const t = $('#toast');
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 6000);
}

async function refresh() {
  if (inflight) { again = true; return; }
  inflight = true;
  try {
    do {
      again = false;
      const [who, channel] = [view.as, view.channel];
      const as = who === WATCH ? '' : who;
      const res = await fetch(`/_standin/ui?as=${encodeURIComponent(as)}&channel=${encodeURIComponent(channel)}`);
      if (!res.ok) throw new Error(`the stand-in answered ${res.status}`);
      const ui = await res.json();
      // The person picked someone or somewhere else meanwhile: this answer is stale.
      if (view.as !== who || view.channel !== channel) { again = true; continue; }
      apply(ui, as);
    } while (again);
  } catch (e) {
    toast('Could not load the page: ' + e.message);
  } finally {
    inflight = false;
  }
}

function connect() {
  const es = new EventSource('/_standin/events');
  const conn = $('#conn');
  es.addEventListener('open', () => { conn.textContent = 'live'; conn.classList.add('live'); });
  es.addEventListener('error', () => { conn.textContent = 'reconnecting…'; conn.classList.remove('live'); });
  es.addEventListener('change', (ev) => {
    if (Number(ev.data) !== view.version) refresh();
  });
}

// ---- drawing ------------------------------------------------------------

function apply(ui, asked) {
  if (!view.as) { // first visit: play as the first person, or watch
    view.as = ui.users.length ? ui.users[0].id : WATCH;
    writeHash();
    again = true;
    return;
  }
  if (asked && !ui.as) view.as = WATCH; // nobody by that id: watch instead
  view.version = ui.version;
  view.channel = ui.channel.id;
  view.asName = ui.as_name;
  writeHash();
  document.body.classList.toggle('watching', !ui.as);

  drawUsers(ui);
  drawSidebar(ui);
  drawConversation(ui);
  drawModal(ui.modal);
  const box = $('#watch-modals-box');
  box.hidden = !!ui.as;
  if (!ui.as && shown.modalsHTML !== ui.modals_html) {
    $('#watch-modals').innerHTML = ui.modals_html;
    shown.modalsHTML = ui.modals_html;
    box.open = true;
  }
  if (shown.callsHTML !== ui.calls_html) {
    $('#calls').innerHTML = ui.calls_html;
    shown.callsHTML = ui.calls_html;
  }
  $('#api-url').textContent = ui.api_url;
  formatTimes(document);
}

function drawUsers(ui) {
  const sel = $('#as');
  const want = [[WATCH, '👀 Watch everyone'], ...ui.users.map((u) => [u.id, u.name])];
  const same = sel.options.length === want.length && want.every(([v, t], i) => sel.options[i].value === v && sel.options[i].text === t);
  if (!same) {
    sel.replaceChildren(...want.map(([v, t]) => new Option(t, v)));
  }
  sel.value = ui.as || WATCH;
}

function drawSidebar(ui) {
  const lists = { channel: $('#channels'), dm: $('#dms'), group: $('#dms') };
  const items = { channel: [], dm: [], group: [] };
  for (const c of ui.conversations) {
    const key = `${ui.as}:${c.id}`;
    if (c.id === ui.channel.id || seen[key] === undefined) seen[key] = c.count;
    const unread = c.count - seen[key];
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.channel = c.id;
    b.textContent = c.label;
    if (c.id === ui.channel.id) b.setAttribute('aria-current', 'true');
    if (unread > 0) {
      b.classList.add('unread');
      const badge = document.createElement('span');
      badge.className = 'badge';
      badge.textContent = String(unread);
      badge.setAttribute('aria-label', `${unread} new`);
      b.append(badge);
    }
    li.append(b);
    items[c.kind].push(li);
  }
  lists.channel.replaceChildren(...items.channel);
  lists.dm.replaceChildren(...items.dm, ...items.group);
}

function drawConversation(ui) {
  $('#conv-title').textContent = ui.channel.label;
  const watching = !ui.as;
  $('#conv-hint').textContent = watching
    ? 'Watching everyone: every ephemeral message and action shows, labelled with whom it is for. Pick a person above to play.'
    : (ui.channel.kind === 'dm' ? `Your direct messages with the app, as ${ui.as_name}.` : `You are ${ui.as_name}. Only slash commands reach CoffeeBuddy.`);
  const composer = $('#composer');
  composer.classList.toggle('disabled', watching);
  $('#compose').disabled = watching;
  composer.querySelector('button').disabled = watching;
  $('#compose').placeholder = watching ? 'Pick a person above to type here' : `Message ${ui.channel.label} — type /coffee, /coffee-history or /coffee-cancel`;
  if (shown.channelHTML === ui.channel_html && shown.channelID === ui.channel.id) return;
  const box = $('#messages');
  const stick = shown.channelID !== ui.channel.id || box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  box.innerHTML = ui.channel_html;
  shown.channelHTML = ui.channel_html;
  shown.channelID = ui.channel.id;
  if (stick) box.scrollTop = box.scrollHeight;
}

function drawModal(m) {
  const layer = $('#modal-layer');
  const box = $('#modal');
  if (!m) {
    if (!layer.hidden) { layer.hidden = true; box.replaceChildren(); }
    shown.modalKey = null;
    clientErrors = {};
    return;
  }
  const key = `${m.id}:${m.hash}`;
  if (shown.modalKey !== key) { // a new or updated view: draw it (Slack redraws on views.update too)
    box.innerHTML = m.html;
    shown.modalKey = key;
    clientErrors = {};
    layer.hidden = false;
    updateCounters(box);
    const first = box.querySelector('.field select, .field input, .field textarea');
    if (first) first.focus();
  }
  showErrors({ ...(m.errors || {}), ...clientErrors });
}

function showErrors(errors) {
  for (const p of document.querySelectorAll('#modal .field-error')) {
    const msg = errors[p.dataset.errorFor] || '';
    p.textContent = msg;
    const field = p.closest('.field');
    if (field) field.classList.toggle('has-error', !!msg);
  }
}

// ---- times: Slack shows each reader dates in their own time zone --------

const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
const zoneShort = (d) => new Intl.DateTimeFormat(undefined, { timeZoneName: 'short' })
  .formatToParts(d).find((p) => p.type === 'timeZoneName').value;
const fmt = (d, o) => new Intl.DateTimeFormat(undefined, o).format(d);
const dayDiff = (d) => {
  const start = (x) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
  return Math.round((start(d) - start(new Date())) / 86400000);
};
const pretty = (d, otherwise) => ({ 0: 'today', '-1': 'yesterday', 1: 'tomorrow' }[dayDiff(d)] || otherwise);

function ago(d) {
  const s = Math.round((Date.now() - d.getTime()) / 1000);
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
  for (const [unit, n] of [['year', 31536000], ['month', 2592000], ['day', 86400], ['hour', 3600], ['minute', 60]]) {
    if (Math.abs(s) >= n) return rtf.format(-Math.round(s / n), unit);
  }
  return rtf.format(-s, 'second');
}

// Slack's <!date> tokens (docs.slack.dev, Formatting text: "Date formatting").
const tokens = {
  date_num: (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`,
  date_slash: (d) => fmt(d, { year: 'numeric', month: '2-digit', day: '2-digit' }),
  date_long: (d) => fmt(d, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' }),
  date_long_full: (d) => fmt(d, { year: 'numeric', month: 'long', day: 'numeric' }),
  date_long_pretty: (d) => pretty(d, fmt(d, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' })),
  date: (d) => fmt(d, { year: 'numeric', month: 'long', day: 'numeric' }),
  date_pretty: (d) => pretty(d, fmt(d, { year: 'numeric', month: 'long', day: 'numeric' })),
  date_short: (d) => fmt(d, { year: 'numeric', month: 'short', day: 'numeric' }),
  date_short_pretty: (d) => pretty(d, fmt(d, { year: 'numeric', month: 'short', day: 'numeric' })),
  time: (d) => fmt(d, { hour: 'numeric', minute: '2-digit' }),
  time_secs: (d) => fmt(d, { hour: 'numeric', minute: '2-digit', second: '2-digit' }),
  ago,
};

function formatTimes(root) {
  for (const t of root.querySelectorAll('time[data-unix]')) {
    const d = new Date(Number(t.dataset.unix) * 1000);
    const format = t.dataset.format || '{date_short} {time}';
    let text = format.replace(/\{(\w+)\}/g, (m, name) => (tokens[name] ? tokens[name](d) : m));
    // The zone is named on a Slack date, so a reader knows whose time it is.
    if (t.classList.contains('slack-date') && /\{time/.test(format)) text += ` ${zoneShort(d)}`;
    t.textContent = text;
    t.title = `${d.toISOString()} · ${zone}`;
  }
}

// ---- what the person does ----------------------------------------------

function me() { return view.as === WATCH ? '' : view.as; }

async function click(el, extra) {
  const msg = el.closest('[data-ts]');
  if (!msg || !me()) return;
  el.setAttribute('aria-busy', 'true');
  el.disabled = true;
  try {
    const r = await call('/_standin/play/click', {
      user_id: me(), channel_id: msg.dataset.channel, message_ts: msg.dataset.ts,
      action_id: el.dataset.actionId, block_id: el.dataset.blockId, ...extra,
    });
    if (!r.ok) toast(r.data.error || `The click failed (HTTP ${r.status}).`);
  } finally {
    el.removeAttribute('aria-busy');
    el.disabled = false;
  }
}

async function sendCommand(ev) {
  ev.preventDefault();
  const input = $('#compose');
  const typed = input.value.trim();
  const note = $('#composer-note');
  if (!typed) return;
  if (!typed.startsWith('/')) {
    note.textContent = 'Only slash commands reach CoffeeBuddy here: try /coffee, /coffee-history or /coffee-cancel.';
    return;
  }
  const [command, ...rest] = typed.split(/\s+/);
  input.value = '';
  note.textContent = '';
  const r = await call('/_standin/command', {
    command, text: rest.join(' '), user_id: me(), user_name: view.asName, channel_id: view.channel,
  });
  if (!r.ok) note.textContent = r.data.error || `Slack could not deliver ${command} (HTTP ${r.status}).`;
}

function formValues(form) {
  const values = {};
  for (const f of form.querySelectorAll('.field[data-block-id]')) {
    const block = f.dataset.blockId;
    switch (f.dataset.kind) {
      case 'radio': {
        const c = f.querySelector('input:checked');
        values[block] = c ? c.value : null;
        break;
      }
      case 'checkbox':
        values[block] = [...f.querySelectorAll('input:checked')].map((c) => c.value);
        break;
      case 'unsupported':
        break;
      default: {
        const c = f.querySelector('select, input, textarea');
        values[block] = c && c.value !== '' ? c.value : null;
      }
    }
  }
  return values;
}

async function submitModal(form) {
  const button = form.querySelector('button[type="submit"]');
  if (button) { button.disabled = true; button.setAttribute('aria-busy', 'true'); }
  clientErrors = {};
  try {
    const r = await call('/_standin/play/submit', {
      user_id: me(), view_id: form.dataset.viewId, values: formValues(form),
      skip_client_checks: form.querySelector('[name="skip_client_checks"]').checked,
    });
    if (!r.ok) {
      showErrors({ '': r.data.error || `Slack could not reach the app (HTTP ${r.status}).` });
      return;
    }
    const result = r.data.result || {};
    if (result.checked_by === 'client') clientErrors = result.errors || {};
    if (!result.closed) showErrors(result.errors || {});
  } finally {
    if (button && button.isConnected) { button.disabled = false; button.removeAttribute('aria-busy'); }
  }
}

async function closeModal() {
  const form = $('#modal form');
  if (!form) return;
  await call('/_standin/play/close', { user_id: me(), view_id: form.dataset.viewId });
}

function updateCounters(root) {
  for (const c of root.querySelectorAll('.counter')) {
    const input = document.getElementById(c.dataset.counterFor);
    if (!input) continue;
    const n = [...input.value].length;
    const max = Number(input.dataset.maxlength);
    c.textContent = `${n}/${max}`;
    c.classList.toggle('over', n > max);
  }
}

function wire() {
  document.addEventListener('click', (ev) => {
    const action = ev.target.closest('.messages button[data-action-id]');
    if (action) { click(action); return; }
    const conv = ev.target.closest('.conv-list button[data-channel]');
    if (conv) { view.channel = conv.dataset.channel; writeHash(); refresh(); return; }
    if (ev.target.closest('#modal [data-close]')) closeModal();
  });
  document.addEventListener('change', (ev) => {
    const sel = ev.target.closest('.messages select.action-select');
    if (sel && sel.value) click(sel, { value: sel.value });
    if (ev.target.name === 'skip_client_checks') { // Slack's client stops typing at max_length; skipping its checks lifts that
      for (const f of document.querySelectorAll('#modal [data-maxlength]')) {
        if (ev.target.checked) f.removeAttribute('maxlength'); else f.setAttribute('maxlength', f.dataset.maxlength);
      }
    }
  });
  document.addEventListener('input', (ev) => {
    if (ev.target.closest('#modal')) updateCounters($('#modal'));
  });
  document.addEventListener('submit', (ev) => {
    if (ev.target.matches('#modal form')) { ev.preventDefault(); submitModal(ev.target); }
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && !$('#modal-layer').hidden) closeModal();
  });
  $('#composer').addEventListener('submit', sendCommand);
  $('#as').addEventListener('change', (ev) => {
    view.as = ev.target.value;
    shown = { channelHTML: null, modalKey: null, modalsHTML: null, callsHTML: null };
    writeHash();
    refresh();
  });
  $('#add-user').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const input = $('#new-user');
    const r = await call('/_standin/users', { name: input.value });
    if (!r.ok) { toast(r.data.error || 'Could not add that person.'); return; }
    input.value = '';
    view.as = r.data.id;
    writeHash();
    refresh();
  });
  $('#add-channel').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const input = $('#new-channel');
    const r = await call('/_standin/channels', { name: input.value });
    if (!r.ok) { toast(r.data.error || 'Could not add that channel.'); return; }
    input.value = '';
    view.channel = r.data.id;
    writeHash();
    refresh();
  });
  window.addEventListener('hashchange', () => { readHash(); refresh(); });
}

$('#tz').textContent = `🕒 ${zone}`;
readHash();
wire();
connect();
refresh();
