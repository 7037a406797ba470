// Plays a whole coffee run through the local Slack stand-in's web page, as
// three people in three browser windows, and checks what each one sees.
// Started by eventing/devstack's TestPlaygroundInBrowser against a real
// local stack (STANDIN_URL); exits non-zero on the first failed check.
//
// Waits are on conditions (Playwright's auto-waiting locators), never on
// time: the bot answers through Kafka, so each check may wait up to WAIT.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

const base = process.env.STANDIN_URL;
const artifacts = process.env.ARTIFACT_DIR || '.';
const WAIT = 30_000;
assert.ok(base, 'STANDIN_URL must name the stand-in');

const started = Date.now();
const log = (msg) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const problems = [];

// A person: their own window, in their own time zone.
async function person(label, timezoneId) {
  const context = await browser.newContext({ locale: 'en-US', timezoneId, viewport: { width: 1400, height: 1000 } });
  context.setDefaultTimeout(WAIT);
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`${label}: page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`${label}: console: ${m.text()}`); });
  page.on('dialog', (d) => { problems.push(`${label}: a dialog opened: ${d.message()}`); d.dismiss(); });
  return { label, page, timezoneId };
}

const messages = (p) => p.page.locator('#messages');
// The run message: the top-level message whose headline names the run.
const runMessage = (p) => p.page.locator('#messages > article.msg', { hasText: /started a coffee run|coffee run by/i }).first();
const modal = (p) => p.page.getByRole('dialog');

async function sees(p, text, where = messages(p)) {
  await where.getByText(text, { exact: false }).first().waitFor({ state: 'visible' });
}

async function seesNot(p, text, where = messages(p)) {
  const n = await where.getByText(text, { exact: false }).count();
  assert.equal(n, 0, `${p.label} should not see ${JSON.stringify(text)}`);
}

// The picker shows who the window plays (it is redrawn once the stand-in
// answers, so this waits for it).
async function plays(p, name) {
  await p.page.waitForFunction((n) => document.querySelector('#as')?.selectedOptions[0]?.text === n, name, { timeout: WAIT });
}

async function type(p, command) {
  await p.page.getByLabel('Type a slash command').fill(command);
  await p.page.getByLabel('Type a slash command').press('Enter');
}

async function clickButton(p, name, where = runMessage(p)) {
  await where.getByRole('button', { name, exact: true }).click();
}

async function order(p, { drink, size, custom }) {
  const m = modal(p);
  await m.getByRole('heading', { name: /Coffee order|Change your order/ }).waitFor();
  if (drink) await m.getByLabel('Drink').selectOption({ label: drink });
  if (size) await m.getByLabel('Size').selectOption({ label: size });
  if (custom !== undefined) await m.getByLabel(/Customizations/).fill(custom);
  await m.getByRole('button', { name: /Place order|Update order/ }).click();
}

async function fieldError(p, block) {
  return modal(p).locator(`.field[data-block-id="${block}"] .field-error`);
}

try {
  // ---- three people: alice and bob from the directory, erin added ------
  const alice = await person('alice', 'Asia/Tokyo');
  await alice.page.goto(base + '/');
  await plays(alice, 'alice'); // the first person, by default
  await alice.page.locator('#conn.live').waitFor();

  const bob = await person('bob', 'America/New_York');
  await bob.page.goto(base + '/');
  await bob.page.getByLabel('You are').selectOption({ label: 'bob' });
  await bob.page.waitForURL(/as=U0BOB/);
  await plays(bob, 'bob');

  const erin = await person('erin', 'Europe/Berlin');
  await erin.page.goto(base + '/');
  await erin.page.getByLabel('Add someone by name').fill('erin');
  await erin.page.getByRole('button', { name: 'Add', exact: true }).first().click();
  await erin.page.waitForURL(/as=U0ERIN/);
  await plays(erin, 'erin');
  log('alice, bob and erin are in #coffee');

  // ---- alice starts a run ----------------------------------------------
  await type(alice, '/coffee 10');
  await sees(alice, 'You typed');
  await sees(alice, 'Opening your order form');
  await modal(alice).getByRole('heading', { name: 'Coffee order' }).waitFor();
  await sees(bob, '@alice started a coffee run! Last call');
  await seesNot(bob, 'Opening your order form');
  await seesNot(bob, 'You typed');
  assert.equal(await runMessage(bob).locator('.emoji[title=":coffee:"]').first().textContent(), '☕');
  // Last call in each reader's own zone, named.
  const iso = await runMessage(alice).locator('time.slack-date').getAttribute('datetime');
  for (const p of [alice, bob]) {
    const want = new Intl.DateTimeFormat('en-US', { hour: 'numeric', minute: '2-digit', timeZone: p.timezoneId }).format(new Date(iso));
    const zone = { 'Asia/Tokyo': 'GMT+9', 'America/New_York': /^E[SD]T$/ }[p.timezoneId];
    // Intl puts a narrow no-break space before AM/PM; compare spaces as spaces.
    const shown = (await runMessage(p).locator('time.slack-date').textContent()).replace(/\s/g, ' ');
    const [time, tz] = [shown.slice(0, shown.lastIndexOf(' ')), shown.slice(shown.lastIndexOf(' ') + 1)];
    assert.equal(time, want.replace(/\s/g, ' '), `${p.label}'s last call`);
    assert.match(tz, zone instanceof RegExp ? zone : new RegExp(`^${zone.replace('+', '\\+')}$`), `${p.label}'s zone`);
  }
  log('the run message shows with names, emoji and each reader\'s time zone');

  // ---- three orders through the modal ----------------------------------
  await order(alice, { drink: 'Latte', size: 'Large', custom: 'oat milk' });
  await modal(alice).waitFor({ state: 'hidden' });
  await sees(alice, 'Your order is in: Large Latte (oat milk)');
  await sees(bob, '@alice: Large Latte (oat milk)', runMessage(bob));

  await clickButton(bob, 'Add my order');
  await modal(bob).getByRole('heading', { name: 'Coffee order' }).waitFor();
  await sees(bob, 'You clicked');
  // Slack's client: a required field left empty never reaches the app.
  await modal(bob).getByRole('button', { name: 'Place order' }).click();
  await (await fieldError(bob, 'drink')).getByText('Please complete this required field.').waitFor();
  // max_length 200: the browser stops typing at 200, as Slack's client does.
  const custom = modal(bob).getByLabel(/Customizations/);
  await custom.fill('x'.repeat(205));
  assert.equal((await custom.inputValue()).length, 200, 'the form keeps max_length');
  // Skipping the client's checks, the app's own check answers inline.
  await modal(bob).getByLabel("Skip Slack's client checks").check();
  await order(bob, { drink: 'Mocha', size: 'Small', custom: 'y'.repeat(201) });
  await (await fieldError(bob, 'customizations')).getByText('Customizations can be at most 200 characters (this is 201).').waitFor();
  assert.equal(await (await fieldError(bob, 'drink')).textContent(), '', 'the drink error is gone');
  log('inline errors: Slack\'s client (required) and the app\'s (201 characters)');
  await modal(bob).getByLabel("Skip Slack's client checks").uncheck();
  const hostile = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> <!channel> *bold* <javascript:alert(3)|x>';
  await order(bob, { custom: hostile });
  await modal(bob).waitFor({ state: 'hidden' });
  await sees(bob, 'Your order is in: Small Mocha (' + hostile + ')');

  // One long word: it must wrap, not widen the conversation.
  const longWord = 'extra' + 'foam'.repeat(40);
  await clickButton(erin, 'Add my order');
  await order(erin, { drink: 'Cappuccino', size: 'Medium', custom: longWord });
  await modal(erin).waitFor({ state: 'hidden' });

  for (const p of [alice, bob, erin]) {
    const run = runMessage(p);
    await sees(p, 'Orders (3)', run);
    await sees(p, '@alice: Large Latte (oat milk)', run);
    await sees(p, '@bob: Small Mocha (' + hostile + ')', run);
    await sees(p, `@erin: Medium Cappuccino (${longWord})`, run);
    assert.ok(await messages(p).evaluate((el) => el.scrollWidth <= el.clientWidth), `${p.label}: a long word widened the conversation`);
    assert.equal(await run.locator('li').count(), 3, `${p.label}: one list item per order`);
    for (const t of ['1× Large Latte', '1× Small Mocha', '1× Medium Cappuccino']) await sees(p, t, run);
    // The hostile text stayed text: nothing ran, nothing pinged, no element.
    assert.equal(await p.page.evaluate(() => window.__pwned), undefined, `${p.label}: script ran`);
    assert.equal(await messages(p).locator('img, script').count(), 0, `${p.label}: markup got through`);
    assert.equal(await run.locator('.mention.broadcast').count(), 0, `${p.label}: <!channel> pinged`);
    assert.equal(await run.locator('a[href^="javascript"]').count(), 0, `${p.label}: a javascript: link`);
  }
  log('three orders, names and drinks, hostile text inert');

  // ---- erin volunteers, alice closes -----------------------------------
  await clickButton(erin, "I'll go");
  await sees(erin, 'Thanks for volunteering!');
  await sees(alice, '@erin volunteered to go.', runMessage(alice));
  await clickButton(bob, 'Close now');
  await sees(bob, 'Only @alice can close this run early.');
  await clickButton(alice, 'Close now');
  await sees(bob, 'orders closed. @erin is going', runMessage(bob));
  await sees(bob, '🏃 @erin volunteered to go.', runMessage(bob).locator('.thread'));
  log('the run closed with erin as the runner');

  // ---- the runner's DM ---------------------------------------------------
  const dm = erin.page.locator('#dms button', { hasText: 'coffeebuddy' });
  await dm.locator('.badge').waitFor(); // unread
  await dm.click();
  await erin.page.locator('#conv-title', { hasText: 'coffeebuddy' }).waitFor();
  await sees(erin, "You're on coffee duty!");
  for (const t of ['@alice: Large Latte (oat milk)', '@bob: Small Mocha (' + hostile + ')', `@erin: Medium Cappuccino (${longWord})`]) await sees(erin, t);
  await alice.page.locator('#dms button', { hasText: 'coffeebuddy' }).click();
  await alice.page.locator('#conv-title', { hasText: 'coffeebuddy' }).waitFor();
  await seesNot(alice, "You're on coffee duty!");
  await alice.page.locator('#channels button', { hasText: '#coffee' }).click();
  await alice.page.locator('#conv-title', { hasText: '#coffee' }).waitFor();

  await clickButton(erin, 'Mark complete', messages(erin));
  await sees(erin, 'Marked complete. Thanks for the coffee run! 🎉');
  await sees(erin, 'Completed');
  assert.equal(await messages(erin).getByRole('button', { name: 'Mark complete' }).count(), 0, 'the DM lost its button');
  log('erin got the DM and marked the run complete');

  // ---- everyone sees it done --------------------------------------------
  for (const p of [alice, bob]) {
    await sees(p, "Coffee's here! @alice @bob — thanks @erin!", runMessage(p).locator('.thread'));
    await sees(p, 'delivered by @erin', runMessage(p));
  }
  await type(alice, '/coffee-history');
  await sees(alice, 'Coffee runs in this channel (page 1 of 1, 1 run)');
  await sees(alice, 'erin, 3 orders, completed');
  await seesNot(bob, 'Coffee runs in this channel');
  log('the thread, the run message and the history agree');

  // Another channel: its own conversation and composer, its own history.
  await bob.page.getByLabel('Add a channel by name').fill('tea');
  await bob.page.locator('#add-channel').getByRole('button', { name: 'Add' }).click();
  await bob.page.locator('#conv-title', { hasText: '#tea' }).waitFor();
  await sees(bob, 'Nothing here yet');
  await type(bob, '/coffee-history');
  await sees(bob, 'No coffee runs yet!');
  await alice.page.locator('#channels button', { hasText: '#tea' }).waitFor();
  log('a channel added on the page has its own history');

  await mkdir(artifacts, { recursive: true });
  await alice.page.screenshot({ path: path.join(artifacts, 'playground-final.png') });
  await erin.page.screenshot({ path: path.join(artifacts, 'playground-runner-dm.png') });
  log(`screenshots in ${artifacts}`);
  assert.deepEqual(problems, [], 'no page errors, console errors or dialogs');
  log('PASS');
} catch (e) {
  console.error(e.stack || String(e));
  if (problems.length) console.error('Also seen:\n' + problems.join('\n'));
  try {
    await mkdir(artifacts, { recursive: true });
    let i = 0;
    for (const ctx of browser.contexts()) {
      for (const page of ctx.pages()) await page.screenshot({ path: path.join(artifacts, `playground-failed-${i++}.png`) });
    }
    console.error(`screenshots of every window: ${artifacts}/playground-failed-*.png`);
  } catch (_) { /* the browser may be gone */ }
  process.exitCode = 1;
} finally {
  await browser.close();
}
