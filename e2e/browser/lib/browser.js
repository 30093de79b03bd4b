// Browser helpers: Chromium from the system (Debian's /usr/bin/chromium,
// never a downloaded one) driven by playwright-core, and a ChatUser that
// works the web client the way a person does, through the DOM.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { repoRoot } = require('./stack');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const PASSWORD = 'correct-horse-42';
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

const screenshotDir = path.resolve(repoRoot, process.env.SCREENSHOT_DIR || path.join('artifacts', 'screenshots'));

function launch() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
}

// uniq returns a user id for name: the name itself on a fresh stack
// (ids.plain), else made unique per run, since a stack reused through
// EASYCHAT_BASE_URL keeps earlier runs' users.
const ids = { plain: false, used: new Set() };
const run = Date.now().toString(36).slice(-5);
let made = 0;
function uniq(name) {
  let id = ids.plain && !ids.used.has(name) ? name : `${name}-${run}${++made}`;
  ids.used.add(id);
  return id;
}

// register creates an account over the HTTP API (for users whose browser
// comes later).
async function registerAPI(baseURL, id) {
  const res = await fetch(baseURL + '/api/user', {
    method: 'POST',
    body: JSON.stringify({ action: 'register', userId: id, password: PASSWORD }),
  });
  if (!res.ok) throw new Error(`register ${id}: ${res.status} ${await res.text()}`);
  return res.json();
}

function singleConv(a, b) { return a < b ? `${a}_${b}` : `${b}_${a}`; }

class ChatUser {
  constructor(browser, baseURL, id, { viewport = DESKTOP, scale = 1 } = {}) {
    this.browser = browser;
    this.baseURL = baseURL;
    this.id = id;
    this.viewport = viewport;
    this.scale = scale;
    this.errors = [];
  }

  async start() {
    this.context = await this.browser.newContext({ viewport: this.viewport, deviceScaleFactor: this.scale,
      isMobile: this.viewport.width < 500, hasTouch: this.viewport.width < 500 });
    this.context.setDefaultTimeout(20000);
    await this.newPage();
    return this;
  }

  // newPage opens the client in a new tab of the same browser context (same
  // localStorage, so a stored token logs in).
  async newPage() {
    this.page = await this.context.newPage();
    this.page.on('pageerror', (e) => this.errors.push(`pageerror: ${e.message}`));
    this.page.on('console', (m) => {
      if (m.type() === 'error' && !/WebSocket connection|ERR_INTERNET_DISCONNECTED|Failed to load resource/.test(m.text())) {
        this.errors.push(`console: ${m.text()}`);
      }
    });
    await this.page.goto(this.baseURL + '/');
    return this.page;
  }

  async register() {
    const p = this.page;
    await p.locator('#login').waitFor();
    await p.click('#login-form [data-mode=register]');
    await p.fill('#login-form [name=userId]', this.id);
    await p.fill('#login-form [name=nickname]', this.id.split('-')[0].replace(/^./, (c) => c.toUpperCase()));
    await p.fill('#login-form [name=password]', PASSWORD);
    await p.click('#login-submit');
    await this.waitOnline();
  }

  async login() {
    const p = this.page;
    await p.locator('#login').waitFor();
    await p.fill('#login-form [name=userId]', this.id);
    await p.fill('#login-form [name=password]', PASSWORD);
    await p.click('#login-submit');
    await this.waitOnline();
  }

  async waitOnline() {
    await this.page.locator('#conn[data-state=online]').waitFor();
  }

  async startChat(peer) {
    await this.page.fill('#new-chat [name=peer]', peer);
    await this.page.click('#new-chat button');
    await this.page.locator(`#chat-pane[data-conv="${singleConv(this.id, peer)}"]`).waitFor();
  }

  row(conv) { return this.page.locator(`.conv[data-conv="${conv}"]`); }

  async openConv(conv) {
    const back = this.page.locator('#back');
    if (await back.isVisible()) await back.click(); // one-column layout: back to the list
    await this.row(conv).click();
    await this.page.locator(`#chat-pane[data-conv="${conv}"]`).waitFor();
  }

  async send(text) {
    await this.page.fill('#composer textarea', text);
    await this.page.press('#composer textarea', 'Enter');
  }

  msg(text) {
    return this.page.locator('#msg-list .msg').filter({ has: this.page.locator('.text', { hasText: text }) });
  }

  async waitMsg(text) { await this.msg(text).first().waitFor(); }

  async waitOwn(text, status, timeout) {
    await this.page.locator(`#msg-list .msg.own[data-status="${status}"]`)
      .filter({ has: this.page.locator('.text', { hasText: text }) }).first().waitFor({ timeout });
  }

  async status(text) { return this.msg(text).first().getAttribute('data-status'); }

  get phone() { return this.viewport.width < 500; }

  // showActions brings up the actions of the message with text as a person
  // does: by hovering it, or at phone width by tapping it.
  async showActions(text) {
    const li = this.msg(text).first();
    const bubble = li.locator('.bubble');
    if (!this.phone) await bubble.hover();
    else if (!(await li.evaluate((e) => e.classList.contains('open')))) await bubble.tap();
    await li.locator('.tools').waitFor();
    return li;
  }

  // act clicks the action named label (Reply, React, Edit, Recall, Delete
  // for me) of the message with text.
  async act(text, label) {
    const li = await this.showActions(text);
    await li.getByRole('button', { name: label, exact: true }).click();
    return li;
  }

  // react gives emoji to the message with text, from the React palette.
  async react(text, emoji) {
    const li = await this.act(text, 'React');
    await li.getByRole('button', { name: `React with ${emoji}`, exact: true }).click();
  }

  // chip is the reaction chip of emoji under the message with text.
  chip(text, emoji) { return this.msg(text).first().locator('.reactions .chip', { hasText: emoji }); }

  // typeSlowly types into the composer key by key, as a person does (the
  // typing indicator and @mention choices follow keystrokes).
  async typeSlowly(text, delay = 40) {
    await this.page.locator('#composer textarea').pressSequentially(text, { delay });
  }

  // texts lists the visible conversation's messages, top to bottom.
  texts() {
    return this.page.$$eval('#msg-list .msg .text', (els) => els.map((e) => e.textContent));
  }

  async shot(name) {
    fs.mkdirSync(screenshotDir, { recursive: true });
    const file = path.join(screenshotDir, `${name}.png`);
    await this.page.screenshot({ path: file });
    return file;
  }

  async close() {
    if (this.context) await this.context.close();
  }
}

// eventually polls fn until it returns without throwing.
async function eventually(fn, { timeout = 20000, every = 200 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, every));
    }
  }
}

module.exports = { launch, ChatUser, uniq, ids, registerAPI, singleConv, eventually, screenshotDir, DESKTOP, PHONE, PASSWORD };
