// The dashboard in a real headless Chromium against a real `weir serve` running the bank-recon
// example (copied to a temporary folder, as tests/e2e/bank_recon.rs does) plus a second
// pipeline with a large generated CSV to cancel. `just dashboard-test` builds weir, the
// plugins and the test plugins (two versions of `stamp`, for the drop-in replacement) first,
// then runs this with `node --test`. Screenshots go to target/dashboard*.png,
// the server's output to target/dashboard-serve.log.
//
// The steps share one server and one page and run in order: each builds on the one before.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const weirBin = process.env.WEIR_BIN ?? path.join(root, 'target/debug/weir');
const TOKEN = 'dashboard-test-token';
// Large enough, with small batches, that a run lasts well past the click on Cancel.
const BIG_ROWS = Number(process.env.WEIR_DASHBOARD_BIG_ROWS ?? 1_000_000);
// The flags the Debian chromium needs in a container; Playwright adds --headless and a fresh
// temporary --user-data-dir itself.
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

let dir;
let base;
let server;
let serverLog = '';
let browser;
let page;
// Console errors and uncaught exceptions; the login with a wrong token is the one expected 401.
const consoleErrors = [];

// ---------------------------------------------------------------- fixture

/** An hour-old modification time: csv-extract holds back a last record without a line break
 *  (2026-03.csv ends in an open quote) while the file looks like it is still being written. */
function atRest(file) {
  const hourAgo = new Date(Date.now() - 3600 * 1000);
  fs.utimesSync(file, hourAgo, hourAgo);
}

/** The bank-recon example and a big CSV pipeline in a fresh folder, with its own plugins
 *  folder holding the bundled plugins plus one broken file (for the rejected-plugin view). */
function makeFixture() {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weir-dashboard-'));
  const example = path.join(root, 'examples/bank-recon');
  fs.cpSync(path.join(example, 'inbox'), path.join(dir, 'inbox'), { recursive: true });
  for (const name of fs.readdirSync(path.join(dir, 'inbox'))) atRest(path.join(dir, 'inbox', name));
  fs.mkdirSync(path.join(dir, 'plugins'));
  for (const name of ['csv-extract', 'map-transform', 'sqlite-load', 'sqlite-history']) {
    const file = path.join(root, 'plugins/dist', `${name}.wasm`);
    assert.ok(fs.existsSync(file), `${file} is missing: run \`just plugins\``);
    fs.copyFileSync(file, path.join(dir, 'plugins', `${name}.wasm`));
  }
  fs.writeFileSync(path.join(dir, 'plugins/broken.wasm'), 'this is not a WebAssembly component');

  fs.mkdirSync(path.join(dir, 'bigbox'));
  const out = fs.openSync(path.join(dir, 'bigbox/big.csv'), 'w');
  fs.writeSync(out, 'id,name,amount\n');
  for (let start = 1; start <= BIG_ROWS; start += 10_000) {
    let chunk = '';
    for (let i = start; i < Math.min(start + 10_000, BIG_ROWS + 1); i++) {
      // Every 250th record is short a field: enough rejects to need paging.
      chunk += i % 250 === 0 ? `${i},short\n` : `${i},customer ${i},${i % 997}.25\n`;
    }
    fs.writeSync(out, chunk);
  }
  fs.closeSync(out);

  const config = fs.readFileSync(path.join(example, 'weir.toml'), 'utf8');
  const bankRecon = config.slice(config.indexOf('[[pipeline]]'));
  fs.writeFileSync(path.join(dir, 'weir.toml'), `[engine]
plugins_dir = "plugins"
cache_dir = "${path.join(root, 'target/weir-test-cache')}"
state_db = "weir-state.db"
token = "${TOKEN}"

${bankRecon}

[[pipeline]]
name = "big-import"
batch_size = 250
grants = { read_dirs = ["bigbox"], databases = { big = "big.db" } }
extract = { plugin = "csv-extract", config = { path = "bigbox/*.csv" } }
load = [{ plugin = "sqlite-load", config = { database = "big", table = "customers", mode = "append" } }]
history = { plugin = "sqlite-history", config = { database = "big" } }
`);
}

/** Start `weir serve` on `listen` (any free port at first; the same one again on a restart, so
 *  the page can reconnect) and wait until it answers. */
async function startServer(listen = '127.0.0.1:0') {
  server = spawn(weirBin, ['-c', path.join(dir, 'weir.toml'), 'serve', '--listen', listen], {
    cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' },
  });
  server.exited = new Promise((resolve) => server.once('exit', (code) => resolve(code)));
  let out = '';
  for (const stream of [server.stdout, server.stderr]) stream.on('data', (d) => { serverLog += d; out += d; });
  // Up to two minutes: the first start on a fresh machine compiles the plugins.
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const code = await Promise.race([server.exited, new Promise((r) => setTimeout(r, 200, 'running'))]);
    if (code !== 'running') throw new Error(`weir serve exited with ${code}:\n${serverLog}`);
    const addr = out.match(/listening on (http:\/\/\S+)/)?.[1];
    if (!addr) continue;
    base = addr;
    try {
      if ((await fetch(`${base}/api/health`)).ok) return;
    } catch { /* not answering yet */ }
  }
  throw new Error(`weir serve did not answer within 2 minutes:\n${serverLog}`);
}

async function stopServer() {
  if (!server || server.exitCode != null) return;
  server.kill('SIGTERM');
  let timer;
  const code = await Promise.race([server.exited, new Promise((r) => { timer = setTimeout(r, 20_000, 'timeout'); })]);
  clearTimeout(timer); // a pending timer would keep node alive for its 20 s
  if (code === 'timeout') server.kill('SIGKILL');
}

/** Call the API the way scripts do: with the bearer token. */
async function apiCall(method, route) {
  const res = await fetch(`${base}${route}`, { method, headers: { authorization: `Bearer ${TOKEN}` } });
  const body = await res.json();
  assert.ok(res.ok, `${method} ${route}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

/** Every event of a run ({id, type}) from the server's log, read from the SSE replay up to
 *  its end. */
async function runEvents(runId) {
  const abort = new AbortController();
  const res = await fetch(`${base}/api/events?run=${runId}&last_event_id=0`, { signal: abort.signal });
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of res.body) {
    text += decoder.decode(chunk, { stream: true });
    if (/event: run_(completed|failed|cancelled)\n/.test(text)) break;
  }
  abort.abort();
  return text.split('\n\n').map((block) => ({
    id: Number(block.match(/^id: (\d+)$/m)?.[1]),
    type: block.match(/^event: (\S+)$/m)?.[1],
  })).filter((e) => e.id && e.type);
}

/** Trigger a run of `pipeline` with the API and wait for its end; its record. */
async function runToEnd(pipeline) {
  const { run_id: runId } = await apiCall('POST', `/api/pipelines/${pipeline}/runs`);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    // The run's record is written with its first event, a moment after the trigger answers.
    const res = await fetch(`${base}/api/runs/${runId}`);
    const run = await res.json();
    if (res.ok && run.status !== 'running') return run;
    assert.ok(res.ok || res.status === 404, `GET /api/runs/${runId}: ${res.status} ${JSON.stringify(run)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`run ${runId} of ${pipeline} still running after a minute`);
}

/** The throughput curve's point count once it shows `batches` batches. */
async function throughputPoints(batches) {
  await page.waitForFunction((n) =>
    document.querySelector('#throughput-svg .tp-samples')?.dataset.batches === String(n), batches);
  return page.locator('#throughput-svg .tp-point').count();
}

before(async () => {
  const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
  assert.ok(fs.existsSync(chromiumPath), `${chromiumPath} is missing: apt-get install chromium (or set CHROMIUM)`);
  assert.ok(fs.existsSync(weirBin), `${weirBin} is missing: run \`just build\``);
  makeFixture();
  await startServer();
  browser = await chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS });
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(30_000);
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push({ text: msg.text(), url: msg.location().url });
  });
  page.on('pageerror', (err) => consoleErrors.push({ text: `uncaught: ${err.message}`, url: '' }));
});

after(async () => {
  await browser?.close();
  await stopServer();
  // For a failure's post-mortem, next to the screenshots.
  fs.mkdirSync(path.join(root, 'target'), { recursive: true });
  fs.writeFileSync(path.join(root, 'target/dashboard-serve.log'), serverLog);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------- helpers on the page

const pipelineRow = (name) => page.locator(`.pipeline[data-pipeline="${name}"]`);

/** The texts of a table's column, by data-col. */
const column = (table, col) => page.locator(`${table} td[data-col="${col}"]`).allTextContents();

async function screenshot(name) {
  fs.mkdirSync(path.join(root, 'target'), { recursive: true });
  // The notices of the steps before would cover part of the page.
  await page.evaluate(() => document.querySelector('#toasts').replaceChildren());
  await page.screenshot({ path: path.join(root, 'target', name), fullPage: true });
}

// ---------------------------------------------------------------- the steps

test('the page loads, lists every pipeline with its schedule, and goes live', async () => {
  await page.goto(`${base}/`);
  await pipelineRow('bank-recon').waitFor();
  await pipelineRow('big-import').waitFor();
  const bank = pipelineRow('bank-recon');
  assert.equal(await bank.locator('.cron').textContent(), '0 6 1 * *');
  assert.match(await bank.locator('.cron-human').textContent(), /\w/);
  assert.match(await bank.locator('time').textContent(), /\d/, 'next fire time shown');
  assert.equal(await pipelineRow('big-import').locator('.stack').first().textContent(), 'manual only');
  assert.match(await bank.locator('.last-run').textContent(), /never run/);
  await page.locator('#conn[data-state="live"]').waitFor();
});

test('actions are unavailable, with the reason, until logged in with the token', async () => {
  const runNow = pipelineRow('bank-recon').getByRole('button', { name: 'Run now' });
  assert.ok(await runNow.isDisabled());
  assert.match(await page.locator('.hint').textContent(), /Log in with the API token/);

  await page.locator('#auth').getByRole('button', { name: 'Log in' }).click();
  await page.getByLabel('API token').fill('not-the-token');
  await page.locator('#auth form').getByRole('button', { name: 'Log in' }).click();
  await page.locator('.login-error', { hasText: 'Wrong token' }).waitFor();

  await page.getByLabel('API token').fill(TOKEN);
  await page.locator('#auth form').getByRole('button', { name: 'Log in' }).click();
  await page.locator('#auth', { hasText: 'Signed in' }).waitFor();
  await runNow.and(page.locator(':enabled')).waitFor();
  assert.equal(await page.locator('.hint').count(), 0);
});

test('triggering bank-recon moves its progress bars to 100 %', async () => {
  const bank = pipelineRow('bank-recon');
  await bank.getByRole('button', { name: 'Run now' }).click();
  const workers = bank.locator('.worker');
  await page.waitForFunction(() => {
    const bars = document.querySelectorAll('.workers[data-pipeline="bank-recon"] .bar');
    return bars.length === 3 && [...bars].every((b) => b.getAttribute('aria-valuenow') === '100');
  });
  assert.deepEqual(await workers.locator('.w-partition').allTextContents(),
    ['inbox/2026-01.csv', 'inbox/2026-02.csv', 'inbox/2026-03.csv']);
  assert.deepEqual(await workers.locator('.w-percent').allTextContents(), ['100 %', '100 %', '100 %']);
  assert.deepEqual(await workers.locator('.w-rows').allTextContents(), ['31 rows', '26 rows', '21 rows']);
  await bank.locator('.last-run', { hasText: '78 read · 74 loaded · 4 rejected' }).waitFor();
  assert.equal(await bank.locator('.last-run .badge').textContent(), 'completed');
});

test('the run is in the history with 78 read, 74 loaded, 4 rejected', async () => {
  await pipelineRow('bank-recon').locator('.pl-name a').click();
  await page.locator('table.runs tbody tr').first().waitFor();
  assert.equal(await page.locator('table.runs tbody tr').count(), 1);
  const row = page.locator('table.runs tbody tr').first();
  assert.deepEqual(await column('table.runs', 'read'), ['78']);
  assert.deepEqual(await column('table.runs', 'loaded'), ['74']);
  assert.deepEqual(await column('table.runs', 'rejected'), ['4']);
  assert.equal(await row.locator('.badge').textContent(), 'completed');
  assert.match(await row.textContent(), /manual/);
  assert.match(await row.locator('td').nth(3).textContent(), /^\d+(\.\d)? m?s$/, 'a duration like "0.3 s"');
  // The chart above the table: a bar per run listed, its duration, the mark of its rejects.
  const chart = page.locator('#history-svg');
  await chart.waitFor();
  assert.equal(await chart.locator('.hc-bar').count(), 1);
  assert.equal(await chart.locator('.hc-bar').getAttribute('data-loaded'), '74');
  assert.equal(await chart.locator('.hc-dur').count(), 1);
  assert.equal(await chart.locator('.hc-reject').count(), 1);
  assert.equal(await chart.locator('.hc-fail').count(), 0);
  assert.match(await chart.getAttribute('aria-labelledby'), /history-svg-title/);
  assert.match(await chart.locator('#history-svg-title').textContent(), /^bank-recon: rows loaded and duration/);
  await screenshot('dashboard-history.png');
});

test('the run detail shows partitions, rejects with file and line, and the timeline', async () => {
  await page.locator('table.runs tbody tr a').first().click();
  await page.locator('table.rejects tbody tr').first().waitFor();
  const rejects = await page.locator('table.rejects tbody tr').evaluateAll((rows) =>
    rows.map((r) => [...r.cells].slice(0, 3).map((c) => c.textContent)));
  assert.deepEqual(rejects, [
    ['inbox/2026-01.csv', '9', 'csv-extract'],
    ['inbox/2026-01.csv', '16', 'map-transform'],
    ['inbox/2026-02.csv', '9', 'csv-extract'],
    ['inbox/2026-03.csv', '27', 'csv-extract'],
  ]);
  const rows = page.locator('table.rejects tbody tr');
  assert.match(await rows.nth(0).textContent(), /expected 8 fields, found 6.*100900;08\.01\.2026/);
  // A row refused by a transform shows its values by column name.
  assert.equal(await rows.nth(1).locator('dt', { hasText: 'Betrag' }).locator('+ dd').textContent(), '12,3x');
  assert.equal(await page.locator('#rejects-count').textContent(), '4');
  assert.equal(await page.locator('#partitions tbody tr').count(), 3);
  // Per destination (one here): rows written and refused, as the run record has them; the
  // rejects above were refused before the load, so the destination refused none.
  const runIdNow = decodeURIComponent(new URL(page.url()).hash.replace('#/runs/', ''));
  const record = await apiCall('GET', `/api/runs/${encodeURIComponent(runIdNow)}`);
  const destination = page.locator('#destinations table.destinations tbody tr');
  assert.equal(await destination.count(), 1);
  assert.equal(await destination.getAttribute('data-destination'), 'sqlite-load → ledger.transactions');
  assert.equal(Number((await destination.locator('[data-col="loaded"]').textContent()).replaceAll(',', '')), record.rows_loaded);
  assert.equal(record.details.destinations['sqlite-load → ledger.transactions'].loaded, record.rows_loaded);
  assert.equal(await destination.locator('[data-col="rejected"]').textContent(), '0');
  assert.equal(await page.locator('#destinations table.counters').count(), 0, 'no transform reported counts');

  const timeline = page.locator('#timeline tr');
  await page.locator('#timeline tr.ev-run_completed').waitFor();
  const runId = decodeURIComponent(new URL(page.url()).hash.replace('#/runs/', ''));
  const shown = (await timeline.evaluateAll((rows) => rows.map((r) => Number(r.dataset.id))));
  const events = await runEvents(runId);
  assert.deepEqual(shown, events.map((e) => e.id), 'every event of the run, once, in order');
  // One point per committed batch: a batch per statement file (each fits in one).
  const batches = events.filter((e) => e.type === 'batch_committed').length;
  assert.equal(batches, 3);
  assert.equal(await throughputPoints(batches), batches);
  assert.equal(await page.locator('#throughput-count').textContent().then((t) => t.split(' · ')[0]), '3 batches');
  await screenshot('dashboard-run.png');
});

test('cancel stops a long run of big-import', async () => {
  await page.goto(`${base}/#/`);
  const big = pipelineRow('big-import');
  await big.getByRole('button', { name: 'Run now' }).click();
  // Rows are coming in (over 20 rejects' worth), and the bar shows a real percentage below 100.
  await page.waitForFunction(() => {
    const bar = document.querySelector('.workers[data-pipeline="big-import"] .bar');
    const now = Number(bar?.getAttribute('aria-valuenow'));
    return now >= 3 && now < 100;
  });
  await big.getByRole('button', { name: 'Cancel' }).click();
  await big.locator('.last-run .badge', { hasText: 'cancelled' }).waitFor({ timeout: 60_000 });
  const { runs } = await apiCall('GET', '/api/runs?pipeline=big-import');
  assert.equal(runs[0].status, 'cancelled');
  assert.ok(runs[0].rows_loaded > 0 && runs[0].rows_loaded < BIG_ROWS, `loaded ${runs[0].rows_loaded} of ${BIG_ROWS}`);
  assert.equal(await big.locator('.w-status .badge').textContent(), 'cancelled');
  await screenshot('dashboard.png');
});

test('the cancelled run\'s rejects come 20 to a page', async () => {
  await pipelineRow('big-import').locator('.last-run a').click();
  await page.locator('table.rejects tbody tr').first().waitFor();
  const total = Number((await page.locator('#rejects-count').textContent()).replaceAll(',', ''));
  assert.ok(total > 20, `${total} rejects`);
  const lines = () => page.locator('table.rejects td[data-col="line"]').allTextContents();
  // Record i is on line i + 1 (after the header); every 250th is short a field.
  assert.deepEqual((await lines()).slice(0, 3), ['251', '501', '751']);
  assert.equal((await lines()).length, 20);
  assert.match(await page.locator('table.rejects tbody tr').first().textContent(), /expected 3 fields, found 2/);
  assert.equal(await page.locator('#rejects-pager .muted').textContent(), `1–20 of ${total.toLocaleString('en-US')}`);
  await page.getByRole('button', { name: 'Next →' }).click();
  await page.locator('#rejects-pager .muted', { hasText: /^21–/ }).waitFor();
  assert.equal((await lines())[0], '5251', 'line numbers as editors show them');
  await page.getByRole('button', { name: '← Previous' }).click();
  await page.locator('#rejects-pager .muted', { hasText: /^1–20/ }).waitFor();
});

test('the cancelled run\'s throughput curve covers every batch it committed', async () => {
  const runId = decodeURIComponent(new URL(page.url()).hash.replace('#/runs/', ''));
  const batches = (await runEvents(runId)).filter((e) => e.type === 'batch_committed').length;
  assert.ok(batches >= 100, `${batches} batches`); // about 3 % of the rows or more, 250 to a batch
  // A point per batch, or per time slice (at most 240) for longer runs.
  const points = await throughputPoints(batches);
  if (batches <= 240) assert.equal(points, batches);
  else assert.ok(points >= 1 && points <= 240, `${points} points`);
  const { batches: recorded } = await apiCall('GET', `/api/runs/${runId}`);
  assert.equal(recorded, batches);
  const rates = await page.locator('#throughput-svg .tp-point').evaluateAll((points) =>
    points.map((p) => Number(p.getAttribute('cy'))));
  assert.ok(rates.every(Number.isFinite), 'every point has a height');
  const perPoint = await page.locator('#throughput-svg .tp-sample').evaluateAll((gs) => gs.map((g) => Number(g.dataset.batches)));
  assert.equal(perPoint.reduce((a, b) => a + b, 0), batches, 'each batch in one point');
  // Every batch of this run has a reject (every 250th record is short a field): a tick under
  // every point that has a batch.
  assert.equal(await page.locator('#throughput-svg .tp-reject').count(), perPoint.filter((n) => n > 0).length);
  await page.evaluate(() => document.querySelector('#toasts').replaceChildren());
  await page.mouse.move(0, 0);
  await page.locator('#throughput-figure').screenshot({ path: path.join(root, 'target/dashboard-throughput.png') });
});

test('the plugins page shows loaded plugins and the rejected file with its error', async () => {
  await page.locator('nav a', { hasText: 'Plugins' }).click();
  await page.locator('table.plugins > tbody > tr').first().waitFor();
  const names = await page.locator('table.plugins > tbody > tr > td:first-child').allTextContents();
  assert.deepEqual(names.sort(), ['csv-extract', 'map-transform', 'sqlite-history', 'sqlite-load']);
  const csv = page.locator('tr[data-plugin="csv-extract"]');
  assert.equal(await csv.locator('.badge').textContent(), 'extractor');
  assert.match(await csv.locator('td').nth(2).textContent(), /^\d+\.\d+\.\d+/);
  await csv.locator('.schema > summary').click();
  const options = await csv.locator('.props td:first-child').allTextContents();
  assert.ok(options.includes('pathrequired') && options.includes('delimiter'), options.join(', '));
  const rejected = page.locator('table.rejected tbody tr');
  assert.equal(await rejected.count(), 1);
  assert.match(await rejected.textContent(), /broken\.wasm/);
  await screenshot('dashboard-plugins.png');
});

test('after a server restart the page reconnects and misses nothing, duplicates nothing', async () => {
  await page.locator('nav a', { hasText: 'Pipelines' }).click();
  await pipelineRow('bank-recon').waitFor();
  await stopServer();
  await page.locator('#conn:not([data-state="live"])').waitFor();
  // A new statement file, loaded by a run that may well finish before the browser is back:
  // its events then reach the page only through the Last-Event-ID replay.
  fs.copyFileSync(path.join(dir, 'inbox/2026-03.csv'), path.join(dir, 'inbox/2026-04.csv'));
  atRest(path.join(dir, 'inbox/2026-04.csv'));
  await startServer(new URL(base).host);
  const { run_id: runId } = await apiCall('POST', '/api/pipelines/bank-recon/runs');
  await page.locator('#conn[data-state="live"]').waitFor();
  const bank = pipelineRow('bank-recon');
  const newFile = bank.locator(`.workers[data-run="${runId}"] .worker[data-partition="inbox/2026-04.csv"]`);
  await newFile.locator('.bar[aria-valuenow="100"]').waitFor();
  assert.equal(await newFile.locator('.w-rows').textContent(), '21 rows', 'each batch counted once');
  await bank.locator('.last-run', { hasText: '21 read · 20 loaded · 1 rejected' }).waitFor();
  // Sessions do not survive a restart: the page says so instead of failing on click.
  await page.locator('#auth').getByRole('button', { name: 'Log in' }).waitFor();
  assert.ok(await bank.getByRole('button', { name: 'Run now' }).isDisabled());
});

test('a plugin replaced while serving shows a notice and the new version on the plugins page', async () => {
  // The temporary plugins folder (never the repository's plugins/dist): `stamp` 1.0.0 is dropped
  // in while weir serve runs, then its 2.0.0 build is copied over it.
  const [v1, v2] = ['stamp.wasm', 'stamp_v2.wasm'].map((f) => path.join(root, 'tests/plugins/dist', f));
  for (const file of [v1, v2]) assert.ok(fs.existsSync(file), `${file} is missing: run \`just test-plugins\``);
  const sha256 = (file) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  const dropped = path.join(dir, 'plugins/stamp.wasm');
  // The text of the Version cell itself, without the short hash under it.
  const stampVersion = (version) => page.waitForFunction((v) =>
    document.querySelector('tr[data-plugin="stamp"] td:nth-child(3)')?.firstChild?.textContent === v, version);
  const stampHash = () => page.locator('tr[data-plugin="stamp"] .hash').textContent();

  await page.locator('nav a', { hasText: 'Plugins' }).click();
  await page.locator('table.plugins > tbody > tr').first().waitFor();
  fs.copyFileSync(v1, dropped);
  await stampVersion('1.0.0');
  assert.equal(await stampHash(), sha256(v1).slice(0, 12));
  assert.equal(await page.locator('tr[data-plugin="stamp"] .badge').textContent(), 'transformer');

  fs.copyFileSync(v2, dropped);
  const notice = page.locator('#toasts .toast', { hasText: 'Plugin stamp replaced' });
  await notice.waitFor();
  assert.equal(await notice.textContent(), 'Plugin stamp replaced: 1.0.0 → 2.0.0');
  await stampVersion('2.0.0');
  assert.equal(await stampHash(), sha256(v2).slice(0, 12));
  assert.equal(await page.locator('tr[data-plugin="stamp"]').count(), 1, 'one row: the old version is gone');
  // The API agrees, and the new build is no rejected file.
  const { plugins, rejected } = await apiCall('GET', '/api/plugins');
  const stamp = plugins.find((p) => p.name === 'stamp');
  assert.equal(stamp.version, '2.0.0');
  assert.equal(stamp.sha256.replace(/^sha256:/, ''), sha256(v2));
  assert.deepEqual(rejected.map((r) => path.basename(r.file)), ['broken.wasm']);
  await screenshot('dashboard-plugin-replaced.png');
});

test('the history chart has a bar per run, a dot per duration and marks the runs with rejects', async () => {
  // Two more runs: one loads a new statement file (it has a broken record), one finds nothing.
  fs.copyFileSync(path.join(dir, 'inbox/2026-02.csv'), path.join(dir, 'inbox/2026-05.csv'));
  await runToEnd('bank-recon');
  await runToEnd('bank-recon');
  const { runs } = await apiCall('GET', '/api/runs?pipeline=bank-recon');
  assert.equal(runs.length, 4);
  await page.goto(`${base}/#/pipelines/bank-recon`);
  await page.waitForFunction((n) => document.querySelectorAll('#history-svg .hc-bar').length === n, runs.length);
  assert.equal(await page.locator('table.runs tbody tr').count(), runs.length);
  // Oldest on the left, as tall as the rows each run loaded; the run that loaded nothing
  // still has its sliver.
  const bars = await page.locator('#history-svg .hc-bar').evaluateAll((rects) =>
    rects.map((r) => ({ loaded: Number(r.dataset.loaded), height: Number(r.getAttribute('height')) })));
  assert.deepEqual(bars.map((b) => b.loaded), runs.map((r) => r.rows_loaded).reverse());
  const tallest = Math.max(...bars.map((b) => b.loaded));
  for (const b of bars) assert.ok(b.height > 0, 'every run is visible');
  assert.ok(bars.every((b) => b.loaded !== tallest || b.height === Math.max(...bars.map((x) => x.height))));
  assert.equal(await page.locator('#history-svg .hc-dur').count(), runs.length);
  assert.equal(await page.locator('#history-svg .hc-reject').count(), runs.filter((r) => r.rows_rejected > 0).length);
  assert.equal(await page.locator('#history-svg .hc-hit title').count(), runs.length);
  assert.match(await page.locator('#history-svg .hc-hit title').last().textContent(), new RegExp(`run ${runs[0].id}$`));
  // A run opens from the chart.
  await page.evaluate(() => document.querySelector('#toasts').replaceChildren());
  await page.mouse.move(0, 0);
  await page.locator('#history-figure').screenshot({ path: path.join(root, 'target/dashboard-history-chart.png') });
  await page.locator('#history-svg .hc-hit').last().click();
  await page.waitForURL(`**/#/runs/${runs[0].id}`);
  await page.locator('#summary .kvs').waitFor();
});

test('no console errors', () => {
  const unexpected = consoleErrors.filter((e) => !(e.url.endsWith('/api/login') && /401/.test(e.text)));
  assert.deepEqual(unexpected, []);
});
