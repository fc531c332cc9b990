// The web plugin in a real browser (run by tests/e2e/test_web_e2e.py, which starts rabtad and
// PostgreSQL and sets RB_BASE, RB_ORACLE, RB_PASSWORD and RB_ARTIFACTS). Debian's chromium,
// never a downloaded one; a fresh profile each run. The tests run in order and share one case.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { AxeBuilder } = require('@axe-core/playwright');

const BASE = process.env.RB_BASE;
const ORACLE = process.env.RB_ORACLE;
const PASSWORD = process.env.RB_PASSWORD;
const ART = process.env.RB_ARTIFACTS;
const PHONE = '+923001234567';
// Every field a person writes gets this: it must come back as text, never as markup.
const XSS = `<script>window.__xss=1</script><img src=x onerror="window.__xss=2">"'&<b>x</b>`;

let ctx;        // the browser, with a fresh profile
let citizen;    // the citizen's page (signed in by SMS code)
let tracking;   // the case the tests follow
const dialogs = [];

async function newPage() {
  const p = await ctx.newPage();
  p.on('dialog', d => { dialogs.push(d.message()); d.dismiss(); });
  return p;
}

async function shot(p, name) {
  await p.screenshot({ path: path.join(ART, name + '.png'), fullPage: true });
}

async function noScriptRan(p) {
  assert.equal(await p.evaluate(() => window.__xss), undefined, 'an injected script ran');
  assert.deepEqual(dialogs, [], 'an injected script opened a dialog');
}

async function smsCode(phone) {
  const r = await fetch(`${ORACLE}/sms?phone=${encodeURIComponent(phone)}`);
  const body = (await r.json()).body;
  const m = /\b(\d{6})\b/.exec(body || '');
  assert.ok(m, `no code in the SMS to ${phone}: ${body}`);
  return m[1];
}

async function staffPage(user, lang = 'en') {
  const p = await newPage();
  await p.goto(`${BASE}/staff/login?lang=${lang}`);
  await p.fill('#username', user);
  await p.fill('#password', PASSWORD);
  await p.click('button[type=submit].primary');
  await p.waitForURL(/\/staff\/inbox/);
  return p;
}

async function axe(p, what) {
  const r = await new AxeBuilder({ page: p }).analyze();
  const bad = r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map(v => `${v.id}: ${v.help} (${v.nodes.map(n => n.target).join(' ')})`),
                   [], `accessibility of ${what}`);
}

// Debian's chromium with a fresh profile (--user-data-dir in a new temporary folder).
async function browser() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'rabta-chromium-'));
  return chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 412, height: 915 },
  });
}

before(async () => {
  fs.mkdirSync(ART, { recursive: true });
  ctx = await browser();
});

after(async () => { if (ctx) await ctx.close(); });

test('a citizen signs in by SMS code in Urdu', async () => {
  citizen = await newPage();
  await citizen.goto(`${BASE}/signin`);
  assert.equal(await citizen.getAttribute('html', 'dir'), 'rtl');
  assert.equal(await citizen.getAttribute('html', 'lang'), 'ur');
  await citizen.fill('#phone', '0300-1234567');
  await citizen.click('button.primary');
  await citizen.waitForSelector('#code');
  await citizen.fill('#code', await smsCode(PHONE));
  await citizen.click('button.primary');
  await citizen.waitForURL(/\/my$/);
});

test('the citizen submits a complaint in Urdu and gets a tracking number', async () => {
  await citizen.goto(`${BASE}/submit?service=fir_registration`);
  assert.equal(await citizen.getAttribute('html', 'dir'), 'rtl');
  await shot(citizen, 'submit-ur');
  await citizen.check('input[name=kind][value=complaint]');
  await citizen.selectOption('#district', 'lahore');
  await citizen.fill('#text', 'تھانے میں ایف آئی آر درج نہیں کی گئی ' + XSS);
  await citizen.fill('#official', 'SHO ' + XSS);
  await citizen.check('input[name=share_contact]');
  await citizen.click('button.primary');
  await citizen.waitForSelector('#tracking-no');
  tracking = (await citizen.textContent('#tracking-no')).trim();
  assert.match(tracking, /^RB-[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]$/);
  assert.equal(await citizen.getAttribute('html', 'dir'), 'rtl');
  await shot(citizen, 'receipt-ur');
  await noScriptRan(citizen);
});

test('anyone tracks it by number and the last four digits', async () => {
  const other = await browser(); // not signed in: the digits decide
  const p = await other.newPage();
  await p.goto(`${BASE}/track?lang=en`);
  await p.fill('#tn', tracking.toLowerCase());
  await p.fill('#last4', '4567');
  await p.click('button.primary');
  await p.waitForSelector('.result');
  assert.match(await p.textContent('.result'), new RegExp(tracking));
  await shot(p, 'track-en');
  await p.fill('#last4', '0000');
  await p.click('button.primary');
  await p.waitForSelector('.error');
  assert.equal(await p.$('.result'), null, 'wrong digits show nothing of the case');
  await other.close();
});

test('an officer of another department never sees the case', async () => {
  const p = await staffPage('off_rev');
  assert.doesNotMatch(await p.content(), new RegExp(tracking));
  const r = await p.goto(`${BASE}/staff/cases/${tracking}`);
  assert.equal(r.status(), 404);
  assert.doesNotMatch(await p.textContent('main'), /ایف آئی آر|SHO/);
  await p.close();
});

test('the police officer acknowledges the case and asks a question', async () => {
  const p = await staffPage('off_pol');
  await shot(p, 'staff-inbox-en');
  await p.click(`a:text("${tracking}")`);
  await p.waitForSelector('#case-status');
  assert.match(await p.textContent('.case-text'), /<script>window.__xss=1<\/script>/);
  await noScriptRan(p);
  await shot(p, 'staff-case-en');
  await p.click('button[value=acknowledge]');
  await p.waitForURL(/done=acknowledge/);
  assert.equal((await p.textContent('#case-status')).trim(), 'Acknowledged');
  await p.fill('#t-ask', 'Which police station? ' + XSS);
  await p.click('button[value=ask_citizen]');
  await p.waitForURL(/done=ask/);
  assert.equal((await p.textContent('#case-status')).trim(), 'Waiting for your answer');
  await noScriptRan(p);
  await p.close();
});

test('the citizen answers the question', async () => {
  await citizen.goto(`${BASE}/my/${tracking}`);
  assert.match(await citizen.textContent('.timeline'), /Which police station\? <script>/);
  await noScriptRan(citizen);
  await shot(citizen, 'my-case-ur');
  await citizen.fill('#answer', 'تھانہ گلبرگ ' + XSS);
  await citizen.click('form[action$="/comment"] button.primary');
  await citizen.waitForURL(new RegExp(`/my/${tracking}$`));
  assert.equal(await citizen.$('#answer'), null, 'no question is open any more');
  await noScriptRan(citizen);
});

test('the officer resolves it and the citizen rates the resolution', async () => {
  const p = await staffPage('off_pol');
  await p.goto(`${BASE}/staff/cases/${tracking}`);
  assert.match(await p.textContent('.timeline'), /تھانہ گلبرگ <script>/);
  await p.fill('#t-resolve', 'FIR registered ' + XSS);
  await p.click('button[value=resolve]');
  await p.waitForURL(/done=resolve/);
  assert.equal((await p.textContent('#case-status')).trim(), 'Resolved');
  await noScriptRan(p);
  await p.close();
  await citizen.goto(`${BASE}/my/${tracking}?lang=ur`);
  await citizen.check('input[name=rating][value="5"]');
  await citizen.fill('#rate-comment', 'شکریہ ' + XSS);
  await citizen.click('form[action$="/rate"] button.primary');
  await citizen.waitForURL(new RegExp(`/my/${tracking}$`));
  assert.equal((await citizen.textContent('#case-status')).trim(), 'بند');
  await noScriptRan(citizen);
});

test('a form without its CSRF token is refused', async () => {
  const p = await newPage();
  await p.goto(`${BASE}/submit?lang=en`);
  const r = await p.request.post(`${BASE}/submit`, {
    form: { kind: 'complaint', text: 'no token', anonymous: '1' } });
  assert.equal(r.status(), 403);
  const bad = await p.request.post(`${BASE}/submit`, {
    form: { _csrf: 'A'.repeat(43), kind: 'complaint', text: 'wrong token', anonymous: '1' } });
  assert.equal(bad.status(), 403);
  const staff = await p.request.post(`${BASE}/staff/login`, {
    form: { username: 'off_pol', password: PASSWORD } });
  assert.equal(staff.status(), 403);
  await p.close();
  // The submit page is kept rendered; each visitor still gets the token of their own session.
  const visit = async () => {
    const r = await fetch(`${BASE}/submit?lang=en`);
    const sid = /rb_sid=([A-Za-z0-9_-]+)/.exec(r.headers.get('set-cookie'))[1];
    const csrf = /name="_csrf" value="([A-Za-z0-9_-]+)"/.exec(await r.text())[1];
    return { sid, csrf };
  };
  const a = await visit(), b = await visit();
  assert.notEqual(a.sid, b.sid);
  assert.notEqual(a.csrf, b.csrf, 'two visitors got the same CSRF token');
  const post = (sid, csrf) => fetch(`${BASE}/submit`, {
    method: 'POST', redirect: 'manual',
    headers: { Cookie: `rb_sid=${sid}`, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: csrf, kind: 'complaint', service: 'fir_registration',
                                district: 'lahore', text: 'token test' }) });
  assert.equal((await post(b.sid, a.csrf)).status, 403, "another visitor's token is refused");
  assert.equal((await post(b.sid, b.csrf)).status, 201, "the visitor's own token is taken");
});

test('the submit form works with the keyboard alone', async () => {
  const anon = await browser();
  try {
    const p = await anon.newPage();
    await p.goto(`${BASE}/submit?lang=en`);
    // Tab from the top of the page to the text box, type, then on to the send button.
    let steps = 0;
    while (await p.evaluate(() => document.activeElement && document.activeElement.id) !== 'text') {
      await p.keyboard.press('Tab');
      assert.ok(++steps < 40, 'the text box is not reachable with Tab');
    }
    await p.keyboard.type('Street light broken on Mall Road (typed)');
    while (await p.evaluate(() => document.activeElement && document.activeElement.type) !== 'submit') {
      await p.keyboard.press('Tab');
      assert.ok(++steps < 80, 'the send button is not reachable with Tab');
    }
    await p.keyboard.press('Enter');
    await p.waitForSelector('#tracking-no');
    assert.match(await p.textContent('#tracking-no'), /^RB-/);
  } finally {
    await anon.close();
  }
});

test('the main pages have no serious accessibility problem in either language', async () => {
  const p = await newPage();
  const staff = await staffPage('sup_pol');
  for (const lang of ['ur', 'en']) {
    for (const [name, url] of [['home', '/'], ['submit', '/submit'], ['track', '/track'],
                               ['signin', '/signin'], ['kiosk', '/kiosk'],
                               ['my', '/my'], ['my-case', `/my/${tracking}`]]) {
      const pg = name.startsWith('my') ? citizen : p;
      await pg.goto(`${BASE}${url}?lang=${lang}`);
      assert.equal(await pg.getAttribute('html', 'dir'), lang === 'ur' ? 'rtl' : 'ltr');
      await axe(pg, `${url} (${lang})`);
      await shot(pg, `${name}-${lang}`);
    }
    for (const [name, url] of [['staff-inbox', '/staff/inbox'],
                               ['staff-case', `/staff/cases/${tracking}`]]) {
      await staff.goto(`${BASE}${url}?lang=${lang}`);
      await axe(staff, `${url} (${lang})`);
      await shot(staff, `${name}-${lang}`);
    }
  }
  // The kiosk cookie was set by /kiosk: the pages now start over when left alone.
  await p.goto(`${BASE}/track`);
  assert.equal(await p.getAttribute('body', 'data-reset'), '60');
  assert.ok(await p.$('script[src="/assets/kiosk.js"]'), 'the kiosk script is on the page');
  await p.close();
  await staff.close();
});

test('oversight sees the dashboard with charts and downloads its CSV', async () => {
  const p = await staffPage('ovs');
  for (const lang of ['en', 'ur']) {
    await p.goto(`${BASE}/staff/dashboard?lang=${lang}`);
    const police = p.locator('.dash-dept', { hasText: lang === 'en' ? 'Punjab Police' : 'پنجاب پولیس' });
    await police.waitFor();
    // This month's police case: resolved and rated 5 by the citizen above.
    assert.match(await police.textContent(), /5 \/ 5/);
    assert.ok(await police.locator('svg.chart rect.bar').count() >= 1, 'a bar per month');
    await axe(p, `/staff/dashboard (${lang})`);
    await shot(p, `staff-dashboard-${lang}`);
  }
  const [download] = await Promise.all([p.waitForEvent('download'),
                                        p.click('a[href="/staff/dashboard.csv"]')]);
  const csv = fs.readFileSync(await download.path(), 'utf8');
  assert.match(csv.split('\r\n')[0], /^group,name,cases,acknowledged_on_time_pct/);
  assert.match(csv, /\npolice,Punjab Police,/);
  await p.close();
  const officer = await staffPage('off_rev');
  await officer.goto(`${BASE}/staff/dashboard?lang=en`);
  assert.doesNotMatch(await officer.textContent('main'), /Punjab Police/,
                      'an officer sees only their own department on the dashboard');
  await officer.close();
});

test('an administrator publishes a notice with a document; citizens read it; it is withdrawn', async () => {
  const officer = await staffPage('off_pol');
  const denied = await officer.goto(`${BASE}/staff/notices`);
  assert.equal(denied.status(), 403, 'only administrators manage notices');
  await officer.close();
  const pdf = Buffer.from('%PDF-1.4\n% rabta test document\n%%EOF\n');
  const p = await staffPage('adm');
  await p.goto(`${BASE}/staff/notices?lang=en`);
  await p.selectOption('#n-dep', 'police');
  await p.fill('#n-title-en', 'Open court on Friday ' + XSS);
  await p.fill('#n-title-ur', 'جمعہ کو کھلی کچہری ' + XSS);
  await p.fill('#n-body-en', 'The SSP hears complaints at 10:00.');
  await p.fill('#n-body-ur', 'ایس ایس پی صبح دس بجے شکایات سنیں گے۔');
  await p.setInputFiles('#n-doc', { name: 'schedule.pdf', mimeType: 'application/pdf', buffer: pdf });
  await p.click('form[action="/staff/notices"] button.primary');
  await p.waitForURL(/done=1/);
  await axe(p, '/staff/notices (en)');
  const reader = await newPage();
  await reader.goto(`${BASE}/notices?lang=ur`);
  assert.match(await reader.textContent('.notice h2'), /جمعہ کو کھلی کچہری <script>/);
  await noScriptRan(reader);
  await axe(reader, '/notices (ur)');
  await shot(reader, 'notices-ur');
  const href = await reader.getAttribute('.notice a', 'href');
  const doc = await reader.request.get(`${BASE}${href}`);
  assert.equal(doc.status(), 200);
  assert.equal(doc.headers()['content-type'], 'application/pdf');
  assert.deepEqual(Buffer.from(await doc.body()), pdf);
  await p.click('form[action$="/withdraw"] button');
  await p.waitForURL(/done=1/);
  await reader.goto(`${BASE}/notices?lang=en`);
  assert.equal(await reader.$('.notice'), null, 'a withdrawn notice is gone');
  assert.equal((await reader.request.get(`${BASE}${href}`)).status(), 404);
  await reader.close();
  await p.close();
});

test('a supervisor recording an action names a registered official', async () => {
  const p = await staffPage('sup_pol');
  await p.goto(`${BASE}/staff/cases/${tracking}?lang=en`);
  // The registered officials of the police, from the register; free text is not offered.
  assert.equal(await p.getAttribute('#official', 'required'), '');
  assert.equal(await p.$('input#official'), null, 'the official is chosen, not typed');
  await p.selectOption('#official', 'off-e2e');
  await p.selectOption('#official-action', 'warning');
  await p.fill('#official-note', 'Warned about the FIR ' + XSS);
  await p.click('form[action$="/actions"] button');
  await p.waitForURL(/done=/);
  assert.match(await p.textContent('.timeline'), /Action on an official/);
  await noScriptRan(p);
  const officer = await staffPage('off_pol');
  const r = await officer.request.post(`${BASE}/staff/cases/${tracking}/actions`, {
    form: { official: 'off-e2e', action: 'warning' } });
  assert.equal(r.status(), 403, 'a form without its CSRF token is refused');
  await officer.close();
  await p.close();
});

// A staff page's unread count in the header, as a number.
async function unread(p) {
  return Number((await p.textContent('#unread-count')).trim());
}

test('an escalation notifies the supervisor, who sees it and marks it read', async () => {
  // A domicile certificate complaint: a 2-second deadline in this run's SLA file; level 1 puts
  // a notification in the inbox of district_administration's supervisors.
  const r = await fetch(`${BASE}/api/v1/cases`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ kind: 'complaint', anonymous: true, service: 'domicile_certificate',
                           district: 'lahore', text: 'The domicile clerk is never there' }) });
  assert.equal(r.status, 201);
  const tn = (await r.json()).tracking_no;
  const p = await staffPage('sup_dc');
  const deadline = Date.now() + 120000;
  for (;;) {
    await p.goto(`${BASE}/staff/notifications?lang=en`);
    if (await p.$(`li.note.unread:has(a:text("${tn}"))`))
      break;
    assert.ok(Date.now() < deadline, `no notification of ${tn} within 120 s`);
    await p.waitForTimeout(500);
  }
  const note = p.locator('li.note.unread', { has: p.locator(`a:text("${tn}")`) });
  assert.match(await note.textContent(), new RegExp(`case ${tn} .*past its deadline`));
  const before = await unread(p);
  assert.ok(before >= 1, `the header counts ${before} unread`);
  await axe(p, '/staff/notifications (en)');
  await shot(p, 'staff-notifications-en');
  await p.goto(`${BASE}/staff/notifications?lang=ur`);
  assert.equal(await p.getAttribute('html', 'dir'), 'rtl');
  await axe(p, '/staff/notifications (ur)');
  await shot(p, 'staff-notifications-ur');
  const noToken = await p.request.post(`${BASE}${await note.locator('form').getAttribute('action')}`,
                                       { form: {} });
  assert.equal(noToken.status(), 403, 'marking read without the CSRF token is refused');
  await p.goto(`${BASE}/staff/notifications?lang=en`);
  await note.locator('button').click();
  await p.waitForURL(/done=read/);
  assert.equal(await unread(p), before - 1, 'the header counts one fewer unread');
  assert.equal(await p.$(`li.note.unread:has(a:text("${tn}"))`), null, 'it is read now');
  assert.ok(await p.$(`li.note:has(a:text("${tn}"))`), 'and still listed');
  // The staff API says the same.
  await p.goto(`${BASE}/staff/inbox?lang=en`);
  assert.equal(await unread(p), before - 1, 'every staff page shows the count');
  await p.close();
});

test('an administrator adds a staff account, which signs in; others are refused', async () => {
  const officer = await staffPage('off_pol');
  const denied = await officer.goto(`${BASE}/staff/accounts`);
  assert.equal(denied.status(), 403, 'an officer may not manage accounts');
  assert.equal(await officer.$('#add-account'), null);
  const sneak = await officer.request.post(`${BASE}/staff/accounts`, {
    form: { username: 'sneaky', role: 'admin' } });
  assert.equal(sneak.status(), 403);
  await officer.close();
  const sup = await staffPage('sup_pol');
  assert.equal((await sup.goto(`${BASE}/staff/accounts`)).status(), 403,
               'a supervisor may not manage accounts');
  await sup.close();

  const p = await staffPage('adm');
  await p.goto(`${BASE}/staff/accounts?lang=en`);
  await axe(p, '/staff/accounts (en)');
  await shot(p, 'staff-accounts-en');
  await p.fill('#a-user', 'new.officer');
  await p.fill('#a-name', 'Nadia ' + XSS);
  await p.selectOption('#a-role', 'officer');
  await p.selectOption('#a-dep', 'police');
  await p.fill('#a-phone', '0300 7654321');
  await p.fill('#a-email', 'nadia@police.example.pk');
  await p.click('#add-account button.primary');
  await p.waitForSelector('#created-password');
  assert.equal((await p.textContent('#created-user')).trim(), 'new.officer');
  const password = (await p.textContent('#created-password')).trim();
  assert.match(password, /^[A-Za-z0-9_-]{20}$/);
  const row = p.locator('#acct-new\\.officer');
  assert.match(await row.textContent(), /Nadia <script>/);
  assert.equal(await row.locator('input[name=phone]').inputValue(), '+923007654321');
  await noScriptRan(p);
  await shot(p, 'staff-account-added-en');
  await p.goto(`${BASE}/staff/accounts?lang=ur`);
  assert.equal(await p.getAttribute('html', 'dir'), 'rtl');
  await axe(p, '/staff/accounts (ur)');
  await shot(p, 'staff-accounts-ur');

  // The new account signs in with the password the page showed, and works its department.
  const other = await browser();
  const q = await other.newPage();
  await q.goto(`${BASE}/staff/login?lang=en`);
  await q.fill('#username', 'new.officer');
  await q.fill('#password', password);
  await q.click('button[type=submit].primary');
  await q.waitForURL(/\/staff\/inbox/);
  assert.match(await q.textContent('.who'), /Nadia <script>.*officer.*police/);

  // A CSRF-less form is refused; a bad phone is the API's sentence.
  const noToken = await p.request.post(`${BASE}/staff/accounts/new.officer/disable`, { form: {} });
  assert.equal(noToken.status(), 403);
  await p.goto(`${BASE}/staff/accounts?lang=en`);
  await p.fill('#a-user', 'bad.phone');
  await p.selectOption('#a-role', 'oversight');
  await p.fill('#a-phone', 'call me');
  await p.click('#add-account button.primary');
  await p.waitForSelector('.error');
  assert.match(await p.textContent('main'), /is not a phone number/);

  // Disabled: the open session stops working at once, and signing in again fails.
  await p.goto(`${BASE}/staff/accounts?lang=en`);
  await p.locator('#acct-new\\.officer form[action$="/disable"] button').click();
  await p.waitForURL(/done=saved/);
  assert.match(await p.locator('#acct-new\\.officer').textContent(), /disabled/);
  await q.goto(`${BASE}/staff/inbox?lang=en`);
  assert.match(q.url(), /\/staff\/login/, "a disabled account's session is over");
  await q.goto(`${BASE}/staff/login?lang=en`);
  await q.fill('#username', 'new.officer');
  await q.fill('#password', password);
  await q.click('button[type=submit].primary');
  await q.waitForSelector('.error');
  assert.doesNotMatch(q.url(), /\/staff\/inbox/);
  await other.close();
  await p.close();
});

test('every page answers with a CSP without unsafe-inline and is under 60 KB with its CSS', async () => {
  const css = await fetch(`${BASE}/assets/site.css`);
  const cssLen = (await css.arrayBuffer()).byteLength;
  for (const url of ['/', '/submit', '/track', '/signin', '/kiosk', '/notices', '/staff/login']) {
    const r = await fetch(`${BASE}${url}`);
    const csp = r.headers.get('content-security-policy');
    assert.ok(csp && !/unsafe-inline/.test(csp) && /default-src 'none'/.test(csp), csp);
    const len = (await r.arrayBuffer()).byteLength;
    assert.ok(len + cssLen < 60 * 1024, `${url}: ${len} + ${cssLen} bytes`);
  }
});
