// Starts the whole system for the browser tests: the dev stack binary
// (embedded Kafka, FerretDB, Redis, S3, functions under the local FaaS runtime)
// on free ports and a throwaway state directory, and stops it again.
'use strict';

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const repoRoot = path.resolve(__dirname, '..', '..', '..');

// canListen reports whether port is free on all interfaces (the FaaS
// runtime binds ":port").
function canListen(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, () => srv.close(() => resolve(true)));
  });
}

// freePorts picks n free ports below the usual ephemeral range (32768 and
// up on Linux), so outgoing connections cannot take them between the pick
// and the stack binding them.
async function freePorts(n) {
  const out = new Set();
  while (out.size < n) {
    const p = 20000 + Math.floor(Math.random() * 12000);
    if (!out.has(p) && (await canListen(p))) out.add(p);
  }
  return [...out];
}

async function ready(url) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return res.status === 200;
  } catch {
    return false;
  }
}

function tail(file, n = 40) {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '(no log)';
  }
}

// startStack builds ./devstack, runs it in its own process group and waits
// for the gateway's /readyz. It resolves to {baseURL, logFile, stop()}. A
// port taken by someone else in the meantime costs another try.
async function startStack(opts = {}) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (e) {
      if (attempt >= 3 || !/address already in use/.test(e.message)) throw e;
      console.log(`# a port was taken; starting the stack again (${e.message.split('\n').pop()})`);
    }
  }
}

async function startOnce({ readyTimeoutMs = 6 * 60 * 1000 } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'easychat-browser-'));
  const bin = path.join(dir, 'devstack');
  execFileSync('go', ['build', '-o', bin, './devstack'], { cwd: repoRoot, stdio: 'inherit' });

  const [gw, gwInternal, faas, kafka, mongo, redis, s3, connector] = await freePorts(8);
  const addr = (p) => `127.0.0.1:${p}`;
  const env = {
    ...process.env,
    EASYCHAT_STATE_DIR: path.join(dir, 'state'),
    GATEWAY_ADDR: addr(gw),
    GATEWAY_INTERNAL_ADDR: addr(gwInternal),
    FAAS_PORT: String(faas),
    EMBEDDED_KAFKA_ADDR: addr(kafka),
    EMBEDDED_MONGO_ADDR: addr(mongo),
    EMBEDDED_REDIS_ADDR: addr(redis),
    EMBEDDED_S3_ADDR: addr(s3),
    CONNECTOR_HTTP_ADDR: addr(connector),
    LOG_LEVEL: process.env.LOG_LEVEL || 'info',
  };
  const logFile = path.join(dir, 'devstack.log');
  const out = fs.openSync(logFile, 'w');
  const child = spawn(bin, [], { cwd: repoRoot, env, detached: true, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  let exited = null;
  const exit = new Promise((resolve) => child.on('exit', (code, sig) => {
    exited = { code, sig };
    resolve(exited);
  }));

  const stop = async () => {
    if (!exited) {
      try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
      const timer = setTimeout(() => {
        try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
      }, 20000);
      await exit;
      clearTimeout(timer);
    }
    // Function processes run in the same group; make sure none is left.
    try { process.kill(-child.pid, 'SIGKILL'); } catch { /* all gone */ }
    if (process.env.KEEP_STACK_STATE) {
      console.log(`# stack state and log kept in ${dir}`);
    } else {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };

  const baseURL = `http://${addr(gw)}`;
  const deadline = Date.now() + readyTimeoutMs;
  while (!(await ready(baseURL + '/readyz'))) {
    if (exited) {
      const log = tail(logFile);
      await stop();
      throw new Error(`dev stack exited (${JSON.stringify(exited)}) before it was ready:\n${log}`);
    }
    if (Date.now() > deadline) {
      const log = tail(logFile);
      await stop();
      throw new Error(`dev stack not ready after ${readyTimeoutMs / 1000}s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  return { baseURL, logFile, stop };
}

module.exports = { startStack, repoRoot };
