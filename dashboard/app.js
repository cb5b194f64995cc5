// The weir dashboard: one page, no framework and no build step, so the browser runs exactly
// this file. Everything comes from the weir HTTP API on the same origin (/api/...): REST for
// snapshots, Server-Sent Events (/api/events) for everything that happens afterwards.
//
// Pages (the part after '#'): /  pipelines · /pipelines/NAME  run history · /runs/ID  run
// detail · /plugins  loaded and rejected plugins.
'use strict';

// ---------------------------------------------------------------- formatting

// Numbers always read 1,234,567 whatever the browser's locale; dates use the browser's locale.
const numberFormat = new Intl.NumberFormat('en-US');
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
});
const timeFormat = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit', minute: '2-digit', second: '2-digit', fractionalSecondDigits: 3,
});
const relativeFormat = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

const fmtInt = (n) => (n == null ? '—' : numberFormat.format(n));
/** 1,234 B · 12.3 kB · 4.5 MB (decimal units, like the rows/s figures). */
function fmtBytes(n) {
  if (n == null) return '—';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i += 1; }
  return i === 0 ? `${fmtInt(v)} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
const fmtDateTime = (ms) => (ms == null ? '—' : dateTimeFormat.format(new Date(ms)));
const fmtClock = (ms) => timeFormat.format(new Date(ms));

/** 0.04 s → "40 ms", 2.34 → "2.3 s", 75 → "1 min 15 s", 3725 → "1 h 2 min". */
function fmtSeconds(s) {
  if (s == null || !Number.isFinite(s)) return '—';
  if (s < 0.1) return `${Math.round(s * 1000)} ms`;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.floor(s)} s`;
  const min = Math.floor(s / 60);
  const sec = Math.floor(s % 60);
  if (min < 60) return sec ? `${min} min ${sec} s` : `${min} min`;
  return `${Math.floor(min / 60)} h ${min % 60} min`;
}

/** "3 minutes ago", "in 4 days": the largest unit that is at least 1. */
function fmtRelative(ms, now = Date.now()) {
  const diff = (ms - now) / 1000;
  const units = [['day', 86400], ['hour', 3600], ['minute', 60], ['second', 1]];
  for (const [unit, size] of units) {
    if (Math.abs(diff) >= size || unit === 'second') {
      return relativeFormat.format(Math.round(diff / size), unit);
    }
  }
  return '';
}

/** `batch_committed` → "Batch committed". */
const humanType = (type) => type.charAt(0).toUpperCase() + type.slice(1).replaceAll('_', ' ');

const counts = (read, loaded, rejected) =>
  `${fmtInt(read)} read · ${fmtInt(loaded)} loaded · ${fmtInt(rejected)} rejected`;

// ---------------------------------------------------------------- DOM

/** h('a', {href: '#/', class: 'x'}, 'text', child): text is always text, never HTML, so
 *  values from the data (reject lines, error messages) cannot inject markup. */
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value == null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child != null && child !== false) el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const $ = (selector, root = document) => root.querySelector(selector);

/** el.replaceChildren, skipping the null and false of `cond && child`. */
function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c != null && c !== false));
}

/** A relative time that the minute timer keeps fresh. */
const relTime = (ms) => h('span', { class: 'rel', dataset: { rel: ms } }, fmtRelative(ms));

function statusBadge(status) {
  return h('span', { class: `badge st-${status}` }, status);
}

/** A notice at the bottom right that goes away by itself. A `key` names what it is about: a
 *  newer notice with the same key takes the older one's place (`replace: false` keeps the older). */
function toast(message, kind = 'info', { key, title, replace = true } = {}) {
  const box = $('#toasts');
  const same = key == null ? null : [...box.children].find((c) => c.dataset.key === key);
  if (same && !replace) return;
  same?.remove();
  const el = h('div', { class: `toast toast-${kind}`, title, dataset: key == null ? null : { key } }, message);
  box.append(el);
  while (box.children.length > 3) box.firstElementChild.remove();
  setTimeout(() => el.remove(), kind === 'error' ? 8000 : 4000);
}

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** JSON in, JSON out; a non-2xx answer throws with the server's own message. */
async function api(path, { method = 'GET', body } = {}) {
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch {
    throw new ApiError(0, 'weir is not reachable (is `weir serve` running?)');
  }
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    if (res.status === 401 && session.authenticated) {
      // Sessions live in the server's memory: a restart ends them.
      session.authenticated = false;
      renderAuth();
      rerenderActions();
    }
    throw new ApiError(res.status, data?.error || `${res.status} ${res.statusText}`);
  }
  return data;
}

// ---------------------------------------------------------------- session (auth)

// The token is never kept by the page: POST /api/login trades it for an HttpOnly cookie that
// page scripts cannot read, and /api/session tells whether this browser has one.
const session = { authenticated: false, reads_open: true, checked: false };
const ACTIONS_NEED_LOGIN =
  'Log in with the API token to trigger or cancel runs (weir serve prints it at startup; or engine.token / WEIR_TOKEN).';

async function refreshSession() {
  try {
    Object.assign(session, await api('/api/session'), { checked: true });
  } catch {
    session.authenticated = false;
  }
  renderAuth();
}

function renderAuth() {
  const box = $('#auth');
  if (session.authenticated) {
    fill(box,
      h('span', { class: 'who' }, 'Signed in'),
      h('button', { class: 'btn btn-quiet', type: 'button', onclick: logout }, 'Log out'),
    );
    return;
  }
  const error = h('span', { class: 'login-error', role: 'alert' });
  const input = h('input', {
    type: 'password', name: 'token', placeholder: 'API token', autocomplete: 'current-password',
    'aria-label': 'API token', required: true,
  });
  // The hidden user name lets password managers file the token under this weir server.
  const form = h('form', { class: 'login', hidden: true },
    h('input', { type: 'text', name: 'username', autocomplete: 'username', value: 'weir', hidden: true }),
    input, h('button', { class: 'btn btn-primary', type: 'submit' }, 'Log in'), error);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    try {
      await api('/api/login', { method: 'POST', body: { token: input.value } });
      session.authenticated = true;
      renderAuth();
      rerenderActions();
      toast('Logged in: you can trigger and cancel runs.', 'ok');
    } catch (err) {
      error.textContent = err.status === 401 ? 'Wrong token' : err.message;
      input.select();
    }
  });
  const open = h('button', {
    class: 'btn', type: 'button', onclick: () => {
      open.hidden = true;
      form.hidden = false;
      input.focus();
    },
  }, 'Log in');
  fill(box, open, form);
}

async function logout() {
  await api('/api/logout', { method: 'POST' }).catch(() => {});
  session.authenticated = false;
  renderAuth();
  rerenderActions();
}

/** Buttons of the current page re-render on login/logout. */
let rerenderActions = () => {};

/** A button that needs the session; disabled, with the reason shown, when there is none. */
function actionButton(label, onclick, { disabledReason, kind = '' } = {}) {
  const reason = !session.authenticated ? 'Log in to use this' : disabledReason;
  return h('button', {
    class: `btn ${kind}`, type: 'button', disabled: Boolean(reason), title: reason || null,
    onclick: async (e) => {
      const button = e.currentTarget;
      button.disabled = true;
      try {
        await onclick();
      } catch (err) {
        toast(err.message, 'error');
        button.disabled = false;
      }
    },
  }, label);
}

async function triggerRun(pipeline) {
  const res = await api(`/api/pipelines/${encodeURIComponent(pipeline)}/runs`, { method: 'POST' });
  toast(`${pipeline}: run ${res.run_id} started`, 'ok');
  scheduleRefresh();
}

async function cancelRun(runId) {
  await api(`/api/runs/${encodeURIComponent(runId)}/cancel`, { method: 'POST' });
  toast(`Cancelling run ${runId}: it stops after the batch in progress`, 'info');
}

/** The notice shown above actions when they are unavailable. */
function loginHint() {
  return session.authenticated ? null : h('p', { class: 'hint' }, ACTIONS_NEED_LOGIN);
}

// ---------------------------------------------------------------- live events

// Every run's live state, fed by events: run id → { pipeline, status, workers: Map }.
const runs = new Map();
// Pipeline → id of its newest run seen live (its workers are the progress bars shown).
const latestRun = new Map();
// Page-specific listeners (the run detail page's timeline, for one).
const eventListeners = new Set();

const EVENT_TYPES = [
  'engine_started', 'plugin_loaded', 'plugin_replaced', 'plugin_rejected', 'plugin_removed',
  'pipeline_invalid', 'pipeline_valid', 'run_skipped', 'run_started',
  'run_completed', 'run_failed', 'run_cancelled', 'worker_started', 'worker_progress',
  'batch_committed', 'worker_completed', 'worker_retrying', 'worker_failed', 'worker_cancelled', 'plugin_log',
  'partition_claimed', 'partition_fenced', 'run_adopted',
];
const RUN_ENDS = { run_completed: 'completed', run_failed: 'failed', run_cancelled: 'cancelled' };

/**
 * One EventSource and the id of the last event it delivered. The browser reconnects by itself
 * after a dropped connection and sends that id as Last-Event-ID; the server replays exactly
 * what was missed. Ids only grow, so anything at or below `lastId` is a duplicate and dropped.
 * If the browser gives up (an HTTP error), we reopen with `?last_event_id=` ourselves.
 */
class Stream {
  constructor(query, lastId, onEvent, onState = () => {}) {
    Object.assign(this, { query, lastId, onEvent, onState, closed: false });
    this.open();
  }

  open() {
    const params = new URLSearchParams(this.query);
    if (this.lastId != null) params.set('last_event_id', this.lastId);
    const source = new EventSource(`/api/events?${params}`);
    this.source = source;
    source.onopen = () => this.onState('live');
    source.onerror = () => {
      if (this.closed) return;
      if (source.readyState === EventSource.CLOSED) {
        this.onState('offline');
        this.retry = setTimeout(() => this.open(), 3000);
      } else {
        this.onState('reconnecting');
      }
    };
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (message) => {
        const event = JSON.parse(message.data);
        if (this.lastId != null && event.id <= this.lastId) return;
        this.lastId = event.id;
        this.onEvent(event);
      });
    }
    source.addEventListener('resync', (message) => {
      console.warn('weir: event stream resync:', JSON.parse(message.data).reason);
      this.onEvent({ type: 'resync' });
    });
  }

  close() {
    this.closed = true;
    clearTimeout(this.retry);
    this.source.close();
  }
}

// Runs that were already in progress when the page loaded get their own stream replayed from
// their first event (so their bars start from the real totals). Each run's events are taken
// from exactly one stream, so none is counted twice: the main stream ignores these runs, even
// after their own stream has closed.
const followed = new Map();

function followRun(runId) {
  if (followed.has(runId)) return;
  followed.set(runId, new Stream({ run: runId }, 0, (event) => {
    applyEvent(event);
    if (RUN_ENDS[event.type]) followed.get(runId)?.close();
  }));
}

function setConnection(state) {
  const el = $('#conn');
  el.dataset.state = state;
  el.textContent = { live: 'live', reconnecting: 'reconnecting…', offline: 'offline' }[state] || state;
}

/** Open the main stream from `lastId` (taken before the first snapshot, so nothing is lost). */
function startEvents(lastId) {
  new Stream({}, lastId, (event) => {
    if (event.run && followed.has(event.run)) return;
    applyEvent(event);
  }, (state) => {
    setConnection(state);
    // The server may have restarted while we were away: sessions and snapshots are stale.
    if (state === 'live') refreshAfterReconnect();
  });
}

let everLive = false;
function refreshAfterReconnect() {
  if (everLive) {
    refreshSession();
    scheduleRefresh();
  }
  everLive = true;
}

function workerOf(run, partition, time) {
  let worker = run.workers.get(partition);
  if (!worker) {
    worker = {
      partition, status: 'running', read: 0, loaded: 0, rejected: 0,
      done: 0, total: null, started: time, updated: time, error: null,
    };
    run.workers.set(partition, worker);
  }
  return worker;
}

/** Fold one event into the live state, then let the page redraw what it touched. */
function applyEvent(event) {
  if (event.type === 'resync') {
    scheduleRefresh();
    return;
  }
  let run = event.run ? runs.get(event.run) : null;
  if (event.type === 'run_started') {
    run = { id: event.run, pipeline: event.pipeline, status: 'running', started: event.time, workers: new Map() };
    runs.set(event.run, run);
    latestRun.set(event.pipeline, event.run);
    // Keep memory bounded on a page left open for weeks: forget runs no longer shown.
    const shown = new Set(latestRun.values());
    for (const id of runs.keys()) if (!shown.has(id) && runs.size > 50) runs.delete(id);
  }
  if (run && event.partition) {
    const worker = workerOf(run, event.partition, event.time);
    worker.updated = event.time;
    switch (event.type) {
      case 'worker_started':
        worker.status = 'running';
        worker.error = null;
        break;
      case 'worker_progress':
        worker.done = event.done;
        worker.total = event.total ?? worker.total;
        break;
      case 'batch_committed':
        worker.read += event.rows_in;
        worker.loaded += event.rows_out;
        worker.rejected += event.rejected;
        worker.done = event.done;
        worker.total = event.total ?? worker.total;
        break;
      case 'worker_completed':
        Object.assign(worker, {
          status: 'completed', read: event.rows_read, loaded: event.rows_loaded, rejected: event.rows_rejected,
        });
        break;
      case 'worker_retrying':
        Object.assign(worker, { status: 'retrying', error: event.error });
        break;
      case 'worker_failed':
        Object.assign(worker, { status: 'failed', error: event.error });
        break;
      case 'worker_cancelled':
        Object.assign(worker, {
          status: 'cancelled', read: event.rows_read, loaded: event.rows_loaded, rejected: event.rows_rejected,
        });
        break;
      default:
    }
  }
  if (run && RUN_ENDS[event.type]) {
    run.status = RUN_ENDS[event.type];
    // A cancelled run stops its workers with an error ("run cancelled"): show them as cancelled.
    for (const worker of run.workers.values()) {
      if (worker.status !== 'completed' && (worker.status !== 'failed' || run.status === 'cancelled')) {
        worker.status = run.status;
      }
    }
  }
  if (event.type === 'run_skipped') toast(`${event.pipeline}: run skipped — ${event.reason}`, 'info');
  if (event.type === 'engine_started') {
    engineStartedAt = event.time;
    refreshSession();
  }
  // plugin_log is a run's event (shown in its timeline), not a change of the plugins.
  if ((event.type.startsWith('plugin_') && event.type !== 'plugin_log') || event.type.startsWith('pipeline_')) pluginEvent(event);
  if (event.type.startsWith('run_') || event.type === 'engine_started') scheduleRefresh();
  if (run) updateWorkers(run.pipeline);
  for (const listener of eventListeners) listener(event);
}

// ---------------------------------------------------------------- plugin hot swap

/** The first 12 hex digits of a sha256: enough to tell two builds apart at a glance. */
const shortHash = (hash) => (hash ? String(hash).replace(/^sha256:/, '').slice(0, 12) : '—');

/** `{name: version}` → "csv-extract 0.1.0 · map-transform 2.0.0", by name; null when empty. */
function pluginVersions(plugins) {
  const entries = Object.entries(plugins ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return entries.length ? entries.map(([name, version]) => `${name} ${version}`).join(' · ') : null;
}

/** A notice can be long (a reason with a path): the whole text stays in its tooltip. */
const clip = (text, max = 180) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

// When the engine started (event time): the plugins it loads at startup are not news.
let engineStartedAt = null;
const STARTUP_WINDOW_MS = 2000;

/** What a plugin event says, as a notice; null for no notice. */
function pluginNotice(e) {
  switch (e.type) {
    case 'plugin_loaded':
      return { text: `Plugin ${e.plugin} ${e.version} loaded`, kind: 'ok', key: `plugin:${e.plugin}:${e.version}`, replace: false };
    case 'plugin_replaced':
      return {
        text: e.old_version === e.new_version
          ? `Plugin ${e.plugin} replaced: ${e.new_version}, new build ${shortHash(e.new_hash)}`
          : `Plugin ${e.plugin} replaced: ${e.old_version} → ${e.new_version}`,
        kind: 'ok', key: `plugin:${e.plugin}:${e.new_version}`,
      };
    case 'plugin_rejected':
      return {
        text: `Plugin ${e.plugin ? `${e.plugin} ` : ''}rejected: ${e.file}: ${e.reason}${e.kept_version ? ` (${e.kept_version} keeps serving)` : ''}`,
        kind: 'error', key: `rejected:${e.file}`,
      };
    case 'plugin_removed': {
      const users = e.used_by ?? [];
      return {
        text: `Plugin ${e.plugin}${e.version ? ` ${e.version}` : ''} removed${users.length ? ` (used by: ${users.join(', ')})` : ''}`,
        kind: users.length ? 'error' : 'info', key: `plugin:${e.plugin}:${e.version}`,
      };
    }
    // pipeline_invalid / pipeline_valid: no notice of their own (the plugin's notice names the
    // pipelines it affects); the refreshed page shows the status and the reason.
    default:
      return null;
  }
}

/** A plugin was loaded, replaced, rejected or removed while weir serve runs (or a pipeline
 *  became invalid or valid through it): the pages that show plugins or pipeline status (a
 *  pipeline is invalid while a plugin it needs is missing) reload, and a notice says what
 *  happened. What the engine loads as it starts is no news: it gets no notice. */
function pluginEvent(event) {
  if (page === pluginsPage || page === pipelinesPage || page === historyPage) scheduleRefresh();
  const atStartup = engineStartedAt != null && event.time - engineStartedAt >= 0 && event.time - engineStartedAt < STARTUP_WINDOW_MS;
  if (atStartup && event.type !== 'plugin_replaced' && event.type !== 'plugin_removed') return;
  const notice = pluginNotice(event);
  if (notice) toast(clip(notice.text), notice.kind, { key: notice.key, title: notice.text, replace: notice.replace });
}

// ---------------------------------------------------------------- progress bars

/** Percent done of a worker, or null when its total is unknown. */
function percentOf(worker) {
  if (worker.status === 'completed') return 100;
  if (!worker.total) return null;
  return Math.min(100, (100 * worker.done) / worker.total);
}

function workerRow(worker) {
  const fill = h('span', { class: 'bar-fill' });
  const row = h('div', { class: 'worker', dataset: { partition: worker.partition } },
    h('span', { class: 'w-partition', title: worker.partition }, worker.partition),
    h('span', { class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100 }, fill),
    h('span', { class: 'w-percent num' }),
    h('span', { class: 'w-rows num' }),
    h('span', { class: 'w-rate num' }),
    h('span', { class: 'w-status' }));
  return row;
}

/** Update a worker row in place: only text and a transform change, so nothing moves. */
function paintWorker(row, worker) {
  const percent = percentOf(worker);
  const bar = $('.bar', row);
  bar.dataset.status = worker.status;
  bar.classList.toggle('indeterminate', percent == null && worker.status === 'running');
  if (percent == null) bar.removeAttribute('aria-valuenow');
  else bar.setAttribute('aria-valuenow', Math.round(percent));
  $('.bar-fill', bar).style.transform = `scaleX(${(percent ?? 0) / 100})`;
  $('.w-percent', row).textContent = percent == null ? '—' : `${Math.floor(percent)} %`;
  $('.w-rows', row).textContent = `${fmtInt(worker.read)} rows`;
  const seconds = (worker.updated - worker.started) / 1000;
  $('.w-rate', row).textContent = seconds > 0 && worker.read > 0 ? `${fmtInt(Math.round(worker.read / seconds))} rows/s` : '';
  const status = $('.w-status', row);
  fill(status, statusBadge(worker.status));
  status.title = worker.error || '';
}

/** Redraw the progress bars of `pipeline` wherever the current page shows them. */
function updateWorkers(pipeline) {
  const box = document.querySelector(`.workers[data-pipeline="${CSS.escape(pipeline)}"]`);
  if (!box) return;
  const run = runs.get(latestRun.get(pipeline));
  if (!run || run.workers.size === 0) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  if (box.dataset.run !== run.id) {
    box.dataset.run = run.id;
    fill(box, h('div', { class: 'workers-head' },
      h('span', {}, 'Run '), h('a', { href: `#/runs/${encodeURIComponent(run.id)}` }, run.id)));
  }
  let added = false;
  for (const worker of run.workers.values()) {
    let row = box.querySelector(`.worker[data-partition="${CSS.escape(worker.partition)}"]`);
    if (!row) {
      row = workerRow(worker);
      box.append(row);
      added = true;
    }
    paintWorker(row, worker);
  }
  if (added) {
    // Partitions in name order, whichever worker started first.
    const rows = [...box.querySelectorAll('.worker')];
    rows.sort((a, b) => a.dataset.partition.localeCompare(b.dataset.partition));
    box.append(...rows);
  }
}

const workersBox = (pipeline) => h('div', { class: 'workers', hidden: true, dataset: { pipeline } });

// ---------------------------------------------------------------- pages

// The current page: render() draws it from scratch; refresh() reloads its data (after run
// events, debounced); leave() closes what it opened.
let page = null;
let refreshTimer = null;
// Counts page changes: data that arrives for a page no longer shown is dropped (see shownSince).
let routeCount = 0;

/** A check for after an await: is the page that started it still the one shown? */
function shownSince() {
  const at = routeCount;
  return () => at === routeCount;
}

/** Reload the page's data soon: at most twice a second however fast events come. */
function scheduleRefresh() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    page?.refresh?.();
  }, 500);
}

function errorBox(err, retry) {
  return h('div', { class: 'error-box' },
    h('strong', {}, 'Could not load this page. '), err.message, ' ',
    retry && h('button', { class: 'btn', type: 'button', onclick: retry }, 'Try again'));
}

function schedulePieces(p) {
  if (!p.schedule) return [h('span', { class: 'muted' }, 'manual only')];
  return [
    h('code', { class: 'cron' }, p.schedule.expression),
    h('span', { class: 'cron-human' }, p.schedule.description),
    !p.schedule.description.includes(p.schedule.timezone) && h('span', { class: 'muted small' }, p.schedule.timezone),
  ];
}

function nextFirePieces(p) {
  if (!p.next_fire) return [h('span', { class: 'muted' }, '—')];
  const ms = Date.parse(p.next_fire);
  return [h('time', { datetime: p.next_fire }, fmtDateTime(ms)), relTime(ms)];
}

function lastRunPieces(p) {
  if (p.active_run) {
    const ms = Date.parse(p.active_run.started_at);
    return [h('span', {}, statusBadge('running'), ' started ', relTime(ms))];
  }
  const r = p.last_run;
  if (!r) return [h('span', { class: 'muted' }, 'never run')];
  return [
    h('span', {}, statusBadge(r.status), ' ',
      h('a', { href: `#/runs/${encodeURIComponent(r.id)}` }, relTime(r.ended_ms ?? r.started_ms)),
      r.duration_seconds != null && h('span', { class: 'muted' }, ` · ${fmtSeconds(r.duration_seconds)}`)),
    h('span', { class: 'num small' }, `${fmtInt(r.rows_read)} read · ${fmtInt(r.rows_loaded)} loaded · `,
      h('span', { class: r.rows_rejected ? 'warn' : null }, `${fmtInt(r.rows_rejected)} rejected`)),
  ];
}

function pipelineActions(p) {
  const running = p.status === 'running';
  return h('div', { class: 'actions' },
    actionButton('Run now', () => triggerRun(p.name), {
      kind: 'btn-primary',
      disabledReason: p.status === 'invalid' ? 'This pipeline cannot run (see its error)'
        : running ? 'A run is in progress' : null,
    }),
    running && actionButton('Cancel', () => cancelRun(p.active_run.run_id), { kind: 'btn-danger' }));
}

const pipelinesPage = {
  async render(view) {
    this.view = view;
    fill(view, h('section', { class: 'page' },
      h('div', { class: 'page-head' }, h('h1', {}, 'Pipelines'), h('span', { class: 'sub', id: 'summary' })),
      h('div', { id: 'hint' }),
      h('div', { class: 'table pipelines', id: 'pipelines' }, h('p', { class: 'empty' }, 'Loading pipelines…'))));
    await this.refresh();
  },

  async refresh() {
    const list = $('#pipelines', this.view);
    const shown = shownSince();
    let data;
    try {
      data = await api('/api/pipelines');
    } catch (err) {
      fill(list, errorBox(err, () => this.refresh()));
      return;
    }
    if (!shown()) return;
    this.pipelines = data.pipelines;
    for (const p of data.pipelines) if (p.active_run && !latestRun.has(p.name)) followRun(p.active_run.run_id);
    const running = data.pipelines.filter((p) => p.status === 'running').length;
    $('#summary', this.view).textContent =
      `${data.pipelines.length} pipeline${data.pipelines.length === 1 ? '' : 's'} · ${running} running`;
    fill($('#hint', this.view), loginHint());
    if (data.pipelines.length === 0) {
      fill(list, h('div', { class: 'empty' },
        h('strong', {}, 'No pipelines configured.'), ' Add a [[pipeline]] section to weir.toml and restart weir serve.'));
      return;
    }
    const head = h('div', { class: 'pl-row pl-head' },
      ['Pipeline', 'Schedule', 'Next run', 'Last run', ''].map((t) => h('span', {}, t)));
    // Keep each pipeline's progress bars (DOM and all) across refreshes: no flicker, no jump.
    const rows = data.pipelines.map((p) => {
      const old = list.querySelector(`.pipeline[data-pipeline="${CSS.escape(p.name)}"]`);
      const workers = old ? $('.workers', old) : workersBox(p.name);
      return h('article', { class: 'pipeline', dataset: { pipeline: p.name, status: p.status } },
        h('div', { class: 'pl-row' },
          h('div', { class: 'pl-name' },
            h('a', { href: `#/pipelines/${encodeURIComponent(p.name)}` }, p.name), ' ', statusBadge(p.status),
            p.error && h('div', { class: 'pl-error' }, p.error)),
          h('div', { class: 'stack', dataset: { label: 'Schedule' } }, schedulePieces(p)),
          h('div', { class: 'stack', dataset: { label: 'Next run' } }, nextFirePieces(p)),
          h('div', { class: 'stack last-run', dataset: { label: 'Last run' } }, lastRunPieces(p)),
          pipelineActions(p)),
        workers);
    });
    fill(list, head, ...rows);
    for (const p of data.pipelines) updateWorkers(p.name);
  },

  rerender() {
    if (this.pipelines) this.refresh();
  },
};

const HISTORY_PAGE = 25;

const historyPage = {
  async render(view, [name]) {
    Object.assign(this, { view, name, offset: 0 });
    fill(view, h('section', { class: 'page' },
      h('a', { class: 'back', href: '#/' }, '← Pipelines'),
      h('div', { class: 'page-head' }, h('h1', {}, name), h('span', { id: 'head-status' }), h('span', { class: 'spacer' }), h('span', { id: 'head-actions' })),
      h('div', { id: 'head-info', class: 'info-line' }),
      h('div', { id: 'hint' }),
      workersBox(name),
      h('h2', {}, 'Run history'),
      h('div', { id: 'history-chart' }),
      h('div', { id: 'runs' }, h('p', { class: 'empty' }, 'Loading runs…')),
      h('div', { id: 'pager', class: 'pager' })));
    updateWorkers(name);
    await this.refresh();
  },

  async refresh() {
    const box = $('#runs', this.view);
    const shown = shownSince();
    let p;
    let data;
    let recent;
    try {
      [p, data, recent] = await Promise.all([
        api(`/api/pipelines/${encodeURIComponent(this.name)}`),
        api(`/api/runs?pipeline=${encodeURIComponent(this.name)}&limit=${HISTORY_PAGE + 1}&offset=${this.offset}`),
        api(`/api/runs?pipeline=${encodeURIComponent(this.name)}&limit=${HISTORY_CHART_RUNS}`),
      ]);
    } catch (err) {
      fill(box, errorBox(err, () => this.refresh()));
      return;
    }
    if (!shown()) return;
    this.pipeline = p;
    this.recent = recent.runs;
    this.redrawCharts();
    if (p.active_run && !latestRun.has(p.name)) followRun(p.active_run.run_id);
    fill($('#head-status', this.view), statusBadge(p.status));
    fill($('#head-actions', this.view), pipelineActions(p));
    fill($('#hint', this.view), loginHint());
    fill($('#head-info', this.view),
      h('span', { class: 'label' }, 'Schedule'), ...schedulePieces(p),
      h('span', { class: 'label' }, 'Next run'), ...nextFirePieces(p),
      p.error && h('span', { class: 'pl-error' }, p.error));
    // One row more than a page tells whether there is an older page.
    const more = data.runs.length > HISTORY_PAGE;
    const list = data.runs.slice(0, HISTORY_PAGE);
    if (list.length === 0) {
      fill(box, h('div', { class: 'empty' }, h('strong', {}, 'No runs yet.'),
        p.schedule ? ` The first scheduled run is ${fmtDateTime(Date.parse(p.next_fire))}.` : ' This pipeline runs only when triggered.'));
    } else {
      fill(box, h('table', { class: 'grid runs' },
        h('thead', {}, h('tr', {},
          h('th', {}, 'Started'), h('th', {}, 'Run'), h('th', {}, 'Trigger'), h('th', { class: 'num' }, 'Duration'),
          h('th', { class: 'num' }, 'Read'), h('th', { class: 'num' }, 'Loaded'), h('th', { class: 'num' }, 'Rejected'),
          h('th', {}, 'Status'))),
        h('tbody', {}, list.map((r) => h('tr', { dataset: { run: r.id } },
          h('td', {}, fmtDateTime(r.started_ms)),
          h('td', {}, h('a', { href: `#/runs/${encodeURIComponent(r.id)}` }, r.id)),
          h('td', {}, r.trigger ?? '—'),
          h('td', { class: 'num' }, r.status === 'running' ? relTime(r.started_ms) : fmtSeconds(r.duration_seconds)),
          h('td', { class: 'num', dataset: { col: 'read' } }, fmtInt(r.rows_read)),
          h('td', { class: 'num', dataset: { col: 'loaded' } }, fmtInt(r.rows_loaded)),
          h('td', { class: `num${r.rows_rejected ? ' warn' : ''}`, dataset: { col: 'rejected' } }, fmtInt(r.rows_rejected)),
          h('td', { title: r.error || null }, statusBadge(r.status)))))));
    }
    fill($('#pager', this.view),
      this.offset > 0 && h('button', { class: 'btn', type: 'button', onclick: () => this.page(-HISTORY_PAGE) }, '← Newer'),
      more && h('button', { class: 'btn', type: 'button', onclick: () => this.page(HISTORY_PAGE) }, 'Older →'));
  },

  page(delta) {
    this.offset = Math.max(0, this.offset + delta);
    this.refresh();
  },

  /** The chart of the newest runs (whatever page of the table is shown). */
  redrawCharts() {
    const box = $('#history-chart', this.view);
    if (!box) return; // the page was left while its data loaded
    if (!this.recent?.length) {
      fill(box);
      return;
    }
    const [frame, width] = chartFrame(box, 'history-figure');
    fill(frame, historyChart(this.recent, {
      width, pipeline: this.name, capped: this.recent.length === HISTORY_CHART_RUNS,
    }));
  },

  rerender() {
    if (this.pipeline) this.refresh();
  },
};

const REJECTS_PAGE = 20;
const TIMELINE_MAX = 1000;

const runPage = {
  async render(view, [id]) {
    Object.assign(this, { view, id, rejectsOffset: 0, run: null, timelineCount: 0, throughput: new Throughput() });
    fill(view, h('section', { class: 'page' },
      h('a', { class: 'back', id: 'back', href: '#/' }, '← Pipelines'),
      h('div', { class: 'page-head' }, h('h1', {}, 'Run ', h('span', { class: 'mono' }, id)), h('span', { id: 'head-status' }),
        h('span', { class: 'spacer' }), h('span', { id: 'head-actions' })),
      h('div', { id: 'hint' }),
      h('div', { id: 'summary' }, h('p', { class: 'empty' }, 'Loading run…')),
      h('h2', {}, 'Throughput ', h('span', { class: 'count', id: 'throughput-count' })),
      h('div', { id: 'throughput' }),
      h('h2', {}, 'Partitions'),
      h('div', { id: 'partitions' }),
      h('h2', {}, 'Destinations'),
      h('div', { id: 'destinations' }),
      h('h2', {}, 'Rejected rows ', h('span', { class: 'count', id: 'rejects-count' })),
      h('div', { id: 'rejects' }),
      h('div', { id: 'rejects-pager', class: 'pager' }),
      h('h2', {}, 'Event timeline ', h('span', { class: 'count', id: 'timeline-count' })),
      h('table', { class: 'grid timeline' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Time'), h('th', {}, 'Event'), h('th', {}, 'Partition'), h('th', {}, 'Details'))),
        h('tbody', { id: 'timeline' }))));
    // The whole run's events, replayed from its first, then live as they happen.
    this.stream = new Stream({ run: id }, 0, (event) => this.addEvent(event));
    await this.refresh();
    await this.loadRejects();
  },

  leave() {
    this.stream?.close();
    clearTimeout(this.throughputTimer);
  },

  async refresh() {
    const shown = shownSince();
    let r;
    try {
      r = await api(`/api/runs/${encodeURIComponent(this.id)}`);
    } catch (err) {
      if (!shown()) return;
      fill($('#summary', this.view), err.status === 404
        ? h('div', { class: 'empty' }, h('strong', {}, 'No such run. '), 'It may be older than the retention of the state database.')
        : errorBox(err, () => this.refresh()));
      return;
    }
    if (!shown()) return;
    const ended = this.run && this.run.status === 'running' && r.status !== 'running';
    this.run = r;
    this.redrawCharts();
    const back = $('#back', this.view);
    back.href = `#/pipelines/${encodeURIComponent(r.pipeline)}`;
    back.textContent = `← ${r.pipeline}`;
    fill($('#head-status', this.view), statusBadge(r.status));
    this.rerender();
    const item = (label, value, cls) => h('div', { class: 'kv' }, h('span', { class: 'label' }, label), h('span', { class: cls }, value));
    fill($('#summary', this.view),
      h('div', { class: 'kvs' },
        item('Pipeline', h('a', { href: `#/pipelines/${encodeURIComponent(r.pipeline)}` }, r.pipeline)),
        item('Trigger', r.trigger ?? '—'),
        r.host && item('Host', r.host, 'mono'),
        item('Started', fmtDateTime(r.started_ms)),
        item('Ended', r.ended_ms ? fmtDateTime(r.ended_ms) : '—'),
        item('Duration', r.status === 'running' ? 'running' : fmtSeconds(r.duration_seconds), 'num'),
        item('Rows read', fmtInt(r.rows_read), 'num big'),
        item('Loaded', fmtInt(r.rows_loaded), 'num big'),
        item('Rejected', fmtInt(r.rows_rejected), `num big${r.rows_rejected ? ' warn' : ''}`),
        item('Filtered', fmtInt(r.rows_filtered ?? 0), 'num'),
        item('Batches', fmtInt(r.batches), 'num'),
        item('Data read', fmtBytes(r.bytes), 'num')),
      runPlugins(r.plugins),
      r.error && r.status !== 'cancelled' && h('div', { class: 'error-box' }, h('strong', {}, 'Error: '), r.error));
    const parts = r.partition_totals || [];
    // On a cluster each partition says which host ran it, with which plugin versions.
    const clustered = parts.some((p) => p.host);
    fill($('#partitions', this.view), parts.length === 0
      ? h('p', { class: 'empty' }, r.status === 'running' ? 'No partition has started yet.' : 'This run had no partitions to read.')
      : h('table', { class: 'grid' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Partition'), clustered && h('th', {}, 'Host'), h('th', {}, 'Status'), h('th', { class: 'num' }, 'Read'),
          h('th', { class: 'num' }, 'Loaded'), h('th', { class: 'num' }, 'Rejected'), h('th', { class: 'num' }, 'Batches'),
          h('th', {}, 'Checkpoint'))),
        h('tbody', {}, parts.map((p) => h('tr', { dataset: { partition: p.partition } },
          h('td', { class: 'mono' }, p.partition),
          clustered && h('td', { class: 'mono', title: pluginVersions(p.plugins) || null }, p.host ?? '—'),
          h('td', { title: p.error || null }, statusBadge(p.status)),
          h('td', { class: 'num' }, fmtInt(p.rows_read)), h('td', { class: 'num' }, fmtInt(p.rows_loaded)),
          h('td', { class: `num${p.rows_rejected ? ' warn' : ''}` }, fmtInt(p.rows_rejected)),
          h('td', { class: 'num' }, fmtInt(p.batches)),
          h('td', { class: 'mono small ellipsis', title: p.checkpoint || null }, p.checkpoint ?? '—'))))));
    fill($('#destinations', this.view), destinationsView(r));
    // Rejects are committed with their batches: reload them as the run goes, and once at the end.
    if (ended || r.status === 'running') this.loadRejects();
  },

  rerender() {
    if (!this.run) return;
    fill($('#head-actions', this.view), this.run.status === 'running'
      ? actionButton('Cancel run', () => cancelRun(this.id), { kind: 'btn-danger' }) : '');
    fill($('#hint', this.view), this.run.status === 'running' && loginHint());
  },

  async loadRejects() {
    const box = $('#rejects', this.view);
    const shown = shownSince();
    let page;
    try {
      page = await api(`/api/runs/${encodeURIComponent(this.id)}/rejects?offset=${this.rejectsOffset}&limit=${REJECTS_PAGE}`);
    } catch (err) {
      fill(box, errorBox(err, () => this.loadRejects()));
      return;
    }
    if (!shown()) return;
    $('#rejects-count', this.view).textContent = fmtInt(page.total);
    const pager = $('#rejects-pager', this.view);
    if (page.total === 0) {
      fill(box, h('p', { class: 'empty' }, 'No rows were rejected in this run.'));
      fill(pager);
      return;
    }
    fill(box, h('table', { class: 'grid rejects' },
      h('thead', {}, h('tr', {}, h('th', {}, 'File'), h('th', { class: 'num' }, 'Line'), h('th', {}, 'Step'),
        h('th', {}, 'Reason'), h('th', {}, 'Raw values'))),
      h('tbody', {}, page.rejects.map((r) => h('tr', {},
        h('td', { class: 'mono' }, r.file ?? r.partition),
        h('td', { class: 'num', dataset: { col: 'line' } }, r.line ?? '—'),
        h('td', {}, r.stage),
        h('td', { class: 'reason' }, r.reason),
        h('td', {}, rawValues(r.raw)))))));
    const last = Math.min(page.offset + page.rejects.length, page.total);
    fill(pager,
      h('span', { class: 'muted' }, `${fmtInt(page.offset + 1)}–${fmtInt(last)} of ${fmtInt(page.total)}`),
      page.offset > 0 && h('button', { class: 'btn', type: 'button', onclick: () => this.pageRejects(-REJECTS_PAGE) }, '← Previous'),
      last < page.total && h('button', { class: 'btn', type: 'button', onclick: () => this.pageRejects(REJECTS_PAGE) }, 'Next →'));
  },

  /** The throughput curve, from the batches seen so far. */
  redrawCharts() {
    const box = $('#throughput', this.view);
    if (!box) return; // the page was left while its data loaded
    const tp = this.throughput;
    const r = this.run;
    const startMs = tp.start ?? r?.started_ms;
    const seconds = r?.ended_ms != null && startMs != null ? (r.ended_ms - startMs) / 1000 : null;
    const rows = tp.samples.reduce((sum, s) => sum + s.rows, 0);
    $('#throughput-count', this.view).textContent = tp.batches === 0 ? ''
      : `${fmtInt(tp.batches)} batch${tp.batches === 1 ? '' : 'es'}${seconds > 0 ? ` · ${fmtCompact(rows / seconds)} rows/s on average` : ''}`;
    if (tp.batches === 0 || startMs == null) {
      const running = !r || r.status === 'running';
      fill(box, h('p', { class: 'empty' }, running ? 'No batch committed yet: the curve starts with the first.'
        : 'No batch was committed in this run: there is no throughput to draw.'));
      return;
    }
    const [frame, width] = chartFrame(box, 'throughput-figure');
    fill(frame, throughputChart(tp, { width, startMs, endMs: r?.ended_ms }));
  },

  pageRejects(delta) {
    this.rejectsOffset = Math.max(0, this.rejectsOffset + delta);
    this.loadRejects();
  },

  addEvent(event) {
    if (event.type === 'resync') {
      this.refresh();
      return;
    }
    // A run replays hundreds of batches at once: one redraw for all of them.
    if (this.throughput.add(event) && !this.throughputTimer) {
      this.throughputTimer = setTimeout(() => {
        this.throughputTimer = null;
        this.redrawCharts();
      }, 250);
    }
    const body = $('#timeline', this.view);
    body.append(h('tr', { class: `ev ev-${event.type}`, dataset: { id: event.id } },
      h('td', { class: 'num mono' }, fmtClock(event.time)),
      h('td', {}, humanType(event.type)),
      h('td', { class: 'mono' }, event.partition ?? ''),
      h('td', {}, eventDetails(event))));
    // A long run has thousands of batches: keep the newest rows, and say so.
    if (body.children.length > TIMELINE_MAX) body.firstElementChild.remove();
    this.timelineCount += 1;
    $('#timeline-count', this.view).textContent = this.timelineCount > TIMELINE_MAX
      ? `${fmtInt(this.timelineCount)} (newest ${fmtInt(TIMELINE_MAX)} shown)` : fmtInt(this.timelineCount);
    if (event.type !== 'worker_progress') scheduleRefresh();
  },
};

/** Where a run's rows went: each destination's rows written and refused (a row one destination
 *  refuses still goes to the others), then the counts its transforms reported (rows filtered by
 *  a rule, fields masked). From the run record's `details`; runs recorded before it existed
 *  have none. */
function destinationsView(r) {
  const destinations = Object.entries(r.details?.destinations ?? {});
  const counters = Object.entries(r.details?.counters ?? {});
  if (destinations.length === 0) {
    return h('p', { class: 'empty' }, r.status === 'running'
      ? 'No batch committed yet.' : 'No per-destination counts for this run.');
  }
  return h('div', {},
    h('table', { class: 'grid destinations' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Destination'), h('th', { class: 'num' }, 'Loaded'),
        h('th', { class: 'num' }, 'Rejected'))),
      h('tbody', {}, destinations.map(([name, d]) => h('tr', { dataset: { destination: name } },
        h('td', { class: 'mono' }, name),
        h('td', { class: 'num', dataset: { col: 'loaded' } }, fmtInt(d.loaded)),
        h('td', { class: `num${d.rejected ? ' warn' : ''}`, dataset: { col: 'rejected' } }, fmtInt(d.rejected)))))),
    counters.length > 0 && h('table', { class: 'grid counters' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Transform count'), h('th', { class: 'num' }, 'Value'))),
      h('tbody', {}, counters.map(([name, value]) => h('tr', { dataset: { counter: name } },
        h('td', { class: 'mono' }, name), h('td', { class: 'num' }, fmtInt(value)))))));
}

/** The plugin versions a run used (plugins are replaced while weir serve runs, so this can
 *  differ from what the Plugins page shows now); nothing for runs recorded before it was kept. */
function runPlugins(plugins) {
  const entries = Object.entries(plugins ?? {}).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) return null;
  return h('div', { class: 'info-line run-plugins', title: pluginVersions(plugins) },
    h('span', { class: 'label' }, 'Plugins'),
    entries.map(([name, version], i) => [i > 0 && h('span', { class: 'muted' }, '·'),
      h('span', { class: 'run-plugin', dataset: { plugin: name } },
        h('span', { class: 'mono' }, name), ' ', h('span', { class: 'mono muted' }, version))]));
}

function eventDetails(e) {
  switch (e.type) {
    case 'run_started': {
      const plugins = pluginVersions(e.plugins);
      return `${e.trigger} trigger · ${fmtInt(e.partitions)} partition${e.partitions === 1 ? '' : 's'}${plugins ? ` · plugins: ${plugins}` : ''}`;
    }
    case 'run_completed': return `${counts(e.rows_read, e.rows_loaded, e.rows_rejected)} in ${fmtSeconds(e.seconds)}`;
    case 'run_failed': return `${e.error} (${counts(e.rows_read, e.rows_loaded, e.rows_rejected)})`;
    case 'run_cancelled': return counts(e.rows_read, e.rows_loaded, e.rows_rejected);
    case 'run_skipped': return e.reason;
    case 'worker_started': return e.checkpoint ? `resumes after checkpoint ${e.checkpoint}` : 'from the start';
    case 'worker_progress': return e.total ? `${Math.floor((100 * e.done) / e.total)} %` : fmtInt(e.done);
    case 'batch_committed': return `${counts(e.rows_in, e.rows_out, e.rejected)}${e.total ? ` · ${Math.floor((100 * e.done) / e.total)} %` : ''}`;
    case 'worker_completed': return counts(e.rows_read, e.rows_loaded, e.rows_rejected);
    case 'worker_cancelled': return counts(e.rows_read, e.rows_loaded, e.rows_rejected);
    case 'worker_retrying': return `attempt ${e.attempt} in ${fmtSeconds(e.delay_ms / 1000)}: ${e.error}`;
    case 'worker_failed': return `${e.error} (after ${e.attempts} attempt${e.attempts === 1 ? '' : 's'}${e.retryable ? '' : ', not retryable'})`;
    case 'engine_started': return `weir ${e.version} · ${fmtInt(e.pipelines)} pipeline${e.pipelines === 1 ? '' : 's'}`;
    case 'plugin_loaded': return `${e.plugin} ${e.version} (${e.kind}) from ${e.file} · sha256 ${shortHash(e.hash)}`;
    case 'plugin_replaced': return `${e.plugin} (${e.kind}): ${e.old_version} → ${e.new_version} · sha256 ${shortHash(e.old_hash)} → ${shortHash(e.new_hash)} · ${e.file}`;
    case 'plugin_rejected': return `${e.file}: ${e.reason}${e.kept_version ? ` · ${e.kept_version} keeps serving` : ''}`;
    case 'plugin_removed': return `${e.plugin} ${e.version} (${e.kind}) from ${e.file}${e.used_by?.length ? ` · used by ${e.used_by.join(', ')}` : ''}`;
    case 'pipeline_invalid': return e.error;
    case 'pipeline_valid': return 'can run again';
    case 'plugin_log': return `${e.plugin} [${e.level}]: ${e.message}`;
    case 'partition_claimed': return `host ${e.host ?? '?'} · epoch ${e.epoch}${e.taken_over_from ? ` · taken over from host ${e.taken_over_from}` : ''}`;
    case 'partition_fenced': return `host ${e.host ?? '?'} · epoch ${e.epoch}: ${e.error}`;
    case 'run_adopted': return `host ${e.host ?? '?'} adopted the run from host ${e.from ?? '?'}`;
    default: return '';
  }
}

/** A rejected row as it came: a source line as it is; the row's values (JSON, when a
 *  transform or loader refused it) as name = value pairs. */
function rawValues(raw) {
  let values = null;
  try {
    values = JSON.parse(raw);
  } catch { /* a raw source line */ }
  if (!values || typeof values !== 'object' || Array.isArray(values)) return h('pre', { class: 'raw' }, raw);
  return h('dl', { class: 'raw raw-values' }, Object.entries(values).map(([name, value]) => [
    h('dt', {}, name), h('dd', {}, typeof value === 'string' ? value : JSON.stringify(value))]));
}

const pluginsPage = {
  async render(view) {
    this.view = view;
    fill(view, h('section', { class: 'page' },
      h('div', { class: 'page-head' }, h('h1', {}, 'Plugins')),
      h('div', { id: 'plugins' }, h('p', { class: 'empty' }, 'Loading plugins…'))));
    await this.refresh();
  },

  async refresh() {
    const box = $('#plugins', this.view);
    const shown = shownSince();
    let data;
    try {
      data = await api('/api/plugins');
    } catch (err) {
      fill(box, errorBox(err, () => this.refresh()));
      return;
    }
    if (!shown()) return;
    // A refresh (a plugin was swapped, a run ended) must not fold up the schema the reader opened.
    const open = new Set([...box.querySelectorAll('tr[data-plugin] details[open]')].map((d) =>
      `${d.closest('tr').dataset.plugin}/${d.className}`));
    const loaded = data.plugins.length === 0
      ? h('p', { class: 'empty' }, 'No plugin is loaded: put .wasm components into the plugins folder (engine.plugins_dir).')
      : h('table', { class: 'grid plugins' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Plugin'), h('th', {}, 'Kind'), h('th', {}, 'Version'),
          h('th', {}, 'Description and configuration'), h('th', {}, 'Used by'), h('th', {}, 'Loaded'),
          h('th', { class: 'num' }, 'Load'))),
        h('tbody', {}, data.plugins.map((p) => h('tr', { dataset: { plugin: p.name } },
          h('td', { class: 'mono strong' }, p.name),
          h('td', {}, h('span', { class: 'badge kind' }, p.kind)),
          h('td', { class: 'mono' }, p.version,
            p.sha256 && h('div', { class: 'hash muted small', title: `sha256 ${p.sha256}` }, shortHash(p.sha256))),
          h('td', {}, h('div', {}, p.description),
            h('div', { class: 'muted small mono ellipsis', title: `${p.file}\nsha256 ${p.sha256}` }, p.file),
            schemaDetails(p.config_schema)),
          h('td', { class: 'used-by' }, usedBy(p.used_by)),
          h('td', { class: 'loaded-at' }, loadedAt(p.loaded_at)),
          h('td', { class: 'num small' }, `${fmtSeconds(p.load_ms / 1000)}${p.cached ? ' (cached)' : ''}`)))));
    const rejected = data.rejected.length === 0
      ? h('p', { class: 'empty' }, 'Every plugin file loaded.')
      : h('table', { class: 'grid rejected' },
        h('thead', {}, h('tr', {}, h('th', {}, 'File'), h('th', {}, 'Why it was rejected'))),
        h('tbody', {}, data.rejected.map((r) => h('tr', {},
          h('td', { class: 'mono' }, r.file),
          h('td', {}, h('div', { class: 'reason error-text' }, r.reason),
            r.kept_version && h('div', { class: 'kept small', title: 'The previous version keeps serving' },
              'kept: ', h('span', { class: 'mono' }, r.kept_version), h('span', { class: 'muted' }, ' — the previous version keeps serving')))))));
    fill(box,
      h('h2', {}, 'Loaded ', h('span', { class: 'count' }, fmtInt(data.plugins.length))), loaded,
      h('h2', {}, 'Rejected ', h('span', { class: 'count' }, fmtInt(data.rejected.length))), rejected);
    for (const d of box.querySelectorAll('tr[data-plugin] details')) {
      if (open.has(`${d.closest('tr').dataset.plugin}/${d.className}`)) d.open = true;
    }
  },
};

/** The pipelines that use a plugin, each a link to its history. */
function usedBy(names) {
  if (names == null) return h('span', { class: 'muted' }, '—');
  if (names.length === 0) return h('span', { class: 'muted' }, 'no pipeline');
  return h('div', { class: 'stack' }, names.map((name) =>
    h('a', { href: `#/pipelines/${encodeURIComponent(name)}` }, name)));
}

/** When a plugin (this build of it) went into service: the date, and how long ago. */
function loadedAt(text) {
  const ms = text ? Date.parse(text) : NaN;
  if (!Number.isFinite(ms)) return h('span', { class: 'muted' }, '—');
  return h('div', { class: 'stack' },
    h('time', { datetime: text, title: text }, fmtDateTime(ms)), h('span', { class: 'muted small' }, relTime(ms)));
}

/** A plugin's configuration: its JSON Schema's properties as a table, and the schema itself. */
function schemaDetails(text) {
  if (!text) return null;
  let schema = null;
  try {
    schema = JSON.parse(text);
  } catch { /* shown as the plugin wrote it */ }
  const properties = Object.entries(schema?.properties ?? {});
  const required = new Set(schema?.required ?? []);
  const type = (p) => (p.enum ? p.enum.map((v) => JSON.stringify(v)).join(' | ')
    : [p.type ?? ''].flat().join(' | '));
  return h('details', { class: 'schema' },
    h('summary', {}, properties.length ? `Configuration: ${properties.map(([name]) => name).join(', ')}` : 'Configuration schema'),
    properties.length > 0 && h('table', { class: 'props' }, h('tbody', {}, properties.map(([name, p]) => h('tr', {},
      h('td', { class: 'mono strong' }, name, required.has(name) && h('span', { class: 'req' }, 'required')),
      h('td', { class: 'mono muted' }, type(p)),
      h('td', {}, p.description ?? '',
        p.default !== undefined && h('span', { class: 'muted' }, ` Default: ${JSON.stringify(p.default)}.`)))))),
    h('details', { class: 'json' }, h('summary', {}, 'JSON Schema'),
      h('pre', {}, schema ? JSON.stringify(schema, null, 2) : text)));
}

// ---------------------------------------------------------------- hosts (engine.cluster)

/** A host's state as `weir cluster status` says it. */
function hostState(x) {
  if (x.stopped) return 'stopped';
  if (!x.alive) return 'lost';
  return x.draining ? 'draining' : 'alive';
}

const HOST_BADGE = { alive: 'st-completed', lost: 'st-failed', draining: 'st-cancelled', stopped: '' };

const hostsPage = {
  async render(view) {
    this.view = view;
    fill(view, h('section', { class: 'page' },
      h('div', { class: 'page-head' }, h('h1', {}, 'Hosts')),
      h('div', { id: 'hosts' }, h('p', { class: 'empty' }, 'Loading hosts…'))));
    await this.refresh();
    // Heartbeat ages and lease expiries change without events: read them again while shown.
    clearInterval(this.timer);
    this.timer = setInterval(() => this.refresh(), 3000);
  },

  leave() {
    clearInterval(this.timer);
  },

  async refresh() {
    const box = $('#hosts', this.view);
    const shown = shownSince();
    let data;
    try {
      data = await api('/api/cluster');
    } catch (err) {
      if (!shown()) return;
      fill(box, err.status === 404
        ? h('p', { class: 'empty' }, 'This weir runs alone: its configuration has no engine.cluster.')
        : errorBox(err, () => this.refresh()));
      return;
    }
    if (!shown()) return;
    const hosts = h('table', { class: 'grid hosts' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Host'), h('th', {}, 'State'), h('th', { class: 'num' }, 'Last heartbeat'),
        h('th', { class: 'num' }, 'Leases'), h('th', {}, 'Version'), h('th', {}, 'Plugins'))),
      h('tbody', {}, data.hosts.map((x) => h('tr', { dataset: { host: x.host_id } },
        h('td', { class: 'mono strong' }, x.host_id, x.host_id === data.host_id && h('span', { class: 'muted' }, ' (this one)')),
        h('td', { class: 'state' }, h('span', { class: `badge ${HOST_BADGE[hostState(x)]}` }, hostState(x))),
        h('td', { class: 'num' }, `${fmtSeconds(x.heartbeat_age_seconds)} ago`),
        h('td', { class: 'num leases' }, fmtInt(x.leases)),
        h('td', { class: 'mono' }, x.version),
        h('td', { class: 'small mono' }, Object.entries(x.plugins).map(([n, v]) => `${n} ${v}`).join(', '))))));
    const leases = data.leases.length === 0
      ? h('p', { class: 'empty' }, 'No lease is held: no run in progress.')
      : h('table', { class: 'grid leases' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Pipeline'), h('th', {}, 'Partition'), h('th', {}, 'State'),
          h('th', {}, 'Host'), h('th', { class: 'num' }, 'Epoch'), h('th', { class: 'num' }, 'Expires in'), h('th', {}, 'Run'))),
        h('tbody', {}, data.leases.map((l) => h('tr', { dataset: { pipeline: l.pipeline, partition: l.partition } },
          h('td', {}, h('a', { href: `#/pipelines/${encodeURIComponent(l.pipeline)}` }, l.pipeline)),
          h('td', { class: 'mono' }, l.partition === '*' ? 'the run' : l.partition),
          h('td', {}, l.state),
          h('td', { class: 'mono owner' }, l.owner ?? '—'),
          h('td', { class: 'num' }, fmtInt(l.epoch)),
          h('td', { class: 'num' }, l.expires_in_seconds == null ? '—'
            : l.expires_in_seconds < 0 ? `expired ${fmtSeconds(-l.expires_in_seconds)} ago` : fmtSeconds(l.expires_in_seconds)),
          h('td', {}, l.run_id ? h('a', { href: `#/runs/${encodeURIComponent(l.run_id)}` }, l.run_id) : '—')))));
    fill(box,
      h('p', { class: 'muted' }, 'Cluster database ', h('span', { class: 'mono' }, data.database),
        `; a host silent for ${fmtSeconds(data.lease_seconds)} loses its leases.`),
      h('h2', {}, 'Hosts ', h('span', { class: 'count' }, fmtInt(data.hosts.length))), hosts,
      h('h2', {}, 'Leases ', h('span', { class: 'count' }, fmtInt(data.leases.length))), leases);
  },
};

// ---------------------------------------------------------------- routing and start

const routes = [
  [/^\/?$/, pipelinesPage, 'pipelines'],
  [/^\/pipelines\/([^/]+)$/, historyPage, 'pipelines'],
  [/^\/runs\/([^/]+)$/, runPage, 'pipelines'],
  [/^\/plugins$/, pluginsPage, 'plugins'],
  [/^\/hosts$/, hostsPage, 'hosts'],
];

async function route() {
  const path = location.hash.replace(/^#/, '');
  page?.leave?.();
  routeCount += 1;
  const view = $('#view');
  const match = routes.map(([re, p, nav]) => [path.match(re), p, nav]).find(([m]) => m);
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.classList.toggle('active', match != null && a.dataset.nav === match[2]);
  }
  if (!match) {
    page = null;
    fill(view, h('div', { class: 'empty' }, h('strong', {}, 'No such page. '), h('a', { href: '#/' }, 'Go to the pipelines')));
    return;
  }
  const [m, next] = match;
  page = next;
  rerenderActions = () => next.rerender?.();
  window.scrollTo(0, 0);
  await next.render(view, m.slice(1).map(decodeURIComponent));
}

async function start() {
  await refreshSession();
  if (!session.reads_open && !session.authenticated) {
    // Not on loopback: even reads need the session cookie. Start for real once logged in.
    fill($('#view'), h('div', { class: 'empty' },
      h('strong', {}, 'This weir server needs a login to show anything. '), 'Log in with the API token (top right).'));
    rerenderActions = () => session.authenticated && start();
    $('#auth button')?.click();
    return;
  }
  // The newest event id *before* the first snapshot: the stream replays everything after it,
  // so nothing that happens while the page loads is missed.
  let lastId;
  try {
    const health = await api('/api/health');
    lastId = health.last_event_id;
    // The Hosts page exists only for a host of a cluster.
    $('#nav-hosts').hidden = health.cluster == null;
  } catch (err) {
    fill($('#view'), errorBox(err, () => location.reload()));
    setConnection('offline');
    return;
  }
  startEvents(lastId);
  window.addEventListener('hashchange', route);
  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => page?.redrawCharts?.(), 150);
  });
  await route();
  // Relative times ("3 minutes ago") age while the page is open.
  setInterval(() => {
    for (const el of document.querySelectorAll('[data-rel]')) el.textContent = fmtRelative(Number(el.dataset.rel));
  }, 15000);
}

start();
