// The dashboard of a cluster in a real headless Chromium: two real `weir serve` hosts sharing a
// throwaway PostgreSQL server (Debian's binaries, run as the `postgres` user when we are root,
// loopback only). The Hosts page of host a lists both hosts, alive; a run triggered on host b
// shows on host a's run page with its host; host b stopped shows as stopped. `just
// dashboard-test` runs it after dashboard.test.mjs.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const weirBin = process.env.WEIR_BIN ?? path.join(root, 'target/debug/weir');
const TOKEN = 'dashboard-cluster-token';
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

/** Debian's PostgreSQL binaries: 15 if installed, else the newest. */
function pgBin() {
  const base = '/usr/lib/postgresql';
  const versions = fs.existsSync(base)
    ? fs.readdirSync(base).filter((v) => fs.existsSync(path.join(base, v, 'bin/initdb'))).sort((x, y) => Number(x) - Number(y))
    : [];
  const version = versions.includes('15') ? '15' : versions.at(-1);
  assert.ok(version, `${base}/*/bin/initdb is missing: this test runs a throwaway PostgreSQL server; install it (Debian: apt-get install postgresql)`);
  return path.join(base, version, 'bin');
}

const asRoot = process.getuid?.() === 0;
function pg(tool, args) {
  const exe = path.join(pgBin(), tool);
  return asRoot
    ? execFileSync('runuser', ['-u', 'postgres', '--', exe, ...args], { stdio: 'pipe' })
    : execFileSync(exe, args, { stdio: 'pipe' });
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

let pgDir;
let pgPort;
const hosts = {};
let serverLog = '';
let browser;
let page;
const consoleErrors = [];

async function startDatabase() {
  pgDir = fs.mkdtempSync(path.join(os.tmpdir(), 'weir-dashboard-pg-'));
  if (asRoot) execFileSync('chown', ['-R', 'postgres:postgres', pgDir]);
  pg('initdb', ['-D', path.join(pgDir, 'data'), '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync']);
  pgPort = await freePort();
  pg('pg_ctl', ['-D', path.join(pgDir, 'data'), '-o',
    `-p ${pgPort} -k ${pgDir} -c listen_addresses=127.0.0.1 -c fsync=off`,
    '-w', '-t', '30', '-l', path.join(pgDir, 'log'), 'start']);
}

/** A host's folder with the bank-recon example and `engine.cluster`, and its `weir serve`. */
async function startHost(id) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `weir-dashboard-${id}-`));
  const example = path.join(root, 'examples/bank-recon');
  fs.cpSync(path.join(example, 'inbox'), path.join(dir, 'inbox'), { recursive: true });
  const hourAgo = new Date(Date.now() - 3600 * 1000);
  for (const name of fs.readdirSync(path.join(dir, 'inbox'))) fs.utimesSync(path.join(dir, 'inbox', name), hourAgo, hourAgo);
  const config = fs.readFileSync(path.join(example, 'weir.toml'), 'utf8');
  fs.writeFileSync(path.join(dir, 'weir.toml'), `[engine]
plugins_dir = "${path.join(root, 'plugins/dist')}"
cache_dir = "${path.join(root, 'target/weir-test-cache')}"
token = "${TOKEN}"
cluster = { url = "postgres://postgres@127.0.0.1:${pgPort}/postgres", host_id = "${id}", lease_seconds = 3 }

${config.slice(config.indexOf('[[pipeline]]'))}
`);
  const child = spawn(weirBin, ['-c', path.join(dir, 'weir.toml'), 'serve', '--listen', '127.0.0.1:0'], {
    cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' },
  });
  child.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  let out = '';
  for (const stream of [child.stdout, child.stderr]) stream.on('data', (d) => { serverLog += `[${id}] ${d}`; out += d; });
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const code = await Promise.race([child.exited, new Promise((r) => setTimeout(r, 200, 'running'))]);
    if (code !== 'running') throw new Error(`weir serve (host ${id}) exited with ${code}:\n${serverLog}`);
    const base = out.match(/listening on (http:\/\/\S+)/)?.[1];
    if (!base) continue;
    try {
      if ((await fetch(`${base}/api/health`)).ok) {
        hosts[id] = { dir, child, base };
        return;
      }
    } catch { /* not answering yet */ }
  }
  throw new Error(`weir serve (host ${id}) did not answer within 2 minutes:\n${serverLog}`);
}

async function stopHost(id) {
  const { child } = hosts[id] ?? {};
  if (!child || child.exitCode != null) return;
  child.kill('SIGTERM');
  let timer;
  const code = await Promise.race([child.exited, new Promise((r) => { timer = setTimeout(r, 20_000, 'timeout'); })]);
  clearTimeout(timer);
  if (code === 'timeout') child.kill('SIGKILL');
}

before(async () => {
  const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
  assert.ok(fs.existsSync(chromiumPath), `${chromiumPath} is missing: apt-get install chromium (or set CHROMIUM)`);
  assert.ok(fs.existsSync(weirBin), `${weirBin} is missing: run \`just build\``);
  await startDatabase();
  await startHost('a');
  await startHost('b');
  browser = await chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS });
  page = await (await browser.newContext({ viewport: { width: 1440, height: 900 } })).newPage();
  page.setDefaultTimeout(30_000);
  page.on('console', (msg) => { if (msg.type() === 'error') consoleErrors.push(`${msg.text()} ${msg.location().url}`); });
  page.on('pageerror', (err) => consoleErrors.push(`uncaught: ${err.message}`));
});

after(async () => {
  await browser?.close();
  await stopHost('a');
  await stopHost('b');
  fs.mkdirSync(path.join(root, 'target'), { recursive: true });
  fs.writeFileSync(path.join(root, 'target/dashboard-cluster-serve.log'), serverLog);
  if (pgDir) {
    try {
      pg('pg_ctl', ['-D', path.join(pgDir, 'data'), '-m', 'immediate', '-w', 'stop']);
    } catch { /* already down */ }
    fs.rmSync(pgDir, { recursive: true, force: true });
  }
  for (const { dir } of Object.values(hosts)) fs.rmSync(dir, { recursive: true, force: true });
});

test('the Hosts page lists every host of the cluster, alive, and no lease while nothing runs', async () => {
  await page.goto(`${hosts.a.base}/#/hosts`);
  await page.locator('#nav-hosts').waitFor({ state: 'visible' });
  for (const id of ['a', 'b']) {
    await page.locator(`tr[data-host="${id}"] .state`).filter({ hasText: 'alive' }).waitFor();
  }
  assert.match(await page.locator('tr[data-host="a"]').innerText(), /\(this one\)/);
  // The event stream follows the cluster's shared log.
  await page.locator('#conn[data-state="live"]').waitFor();
  assert.match(await page.locator('#hosts').innerText(), /No lease is held/);
  await page.screenshot({ path: path.join(root, 'target/dashboard-hosts.png'), fullPage: true });
});

test('a run triggered on host b shows on host a with the host that ran it', async () => {
  const res = await fetch(`${hosts.b.base}/api/pipelines/bank-recon/runs`, {
    method: 'POST', headers: { authorization: `Bearer ${TOKEN}` },
  });
  const body = await res.json();
  assert.equal(res.status, 202, JSON.stringify(body));
  // Host a has the record once host b's writer stored the run's first event (404 before).
  const deadline = Date.now() + 20_000;
  while ((await fetch(`${hosts.a.base}/api/runs/${body.run_id}`)).status === 404) {
    assert.ok(Date.now() < deadline, 'the run never reached host a');
    await new Promise((r) => setTimeout(r, 50));
  }
  await page.goto(`${hosts.a.base}/#/runs/${body.run_id}`);
  // The run page refreshes on the run's events, which reach host a from the shared log.
  await page.locator('#head-status').filter({ hasText: 'completed' }).waitFor();
  assert.equal(await page.locator('#conn').getAttribute('data-state'), 'live');
  const host = page.locator('#summary .kv').filter({ hasText: 'Host' });
  assert.equal((await host.locator('span').nth(1).innerText()).trim(), 'b');
  // Each partition names the host that ran it: host b ran them all (the example's databases
  // are SQLite files, each host's own, so its partitions are not shared).
  const partitionHosts = await page.locator('#partitions tbody tr td:nth-child(2)').allInnerTexts();
  assert.ok(partitionHosts.length > 0, 'no partition rows');
  assert.deepEqual([...new Set(partitionHosts.map((t) => t.trim()))], ['b']);
});

test('a host that stopped shows as stopped', async () => {
  await stopHost('b');
  await page.goto(`${hosts.a.base}/#/hosts`);
  // The page reads the registry again every 3 s.
  await page.locator('tr[data-host="b"] .state').filter({ hasText: 'stopped' }).waitFor();
  await page.locator('tr[data-host="a"] .state').filter({ hasText: 'alive' }).waitFor();
  assert.deepEqual(consoleErrors, []);
});
