// Driver of scripts/report-browser-test.sh: opens the report in headless Chromium (Debian's,
// through playwright-core) with the network off, and checks it against the output tables.
//
// Every element of class `total` with a `data-key` is a labelled total: the driver finds, for
// the chart (`data-chart`) it belongs to, the value the output tables give for that key (by
// running `gateway-analytics query`), and checks both the exact `data-value` and the visible
// label (the value as the page rounds and formats it). A total no rule knows fails the test, so
// a new chart cannot go unchecked.

import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const require = createRequire(join(process.env.NODE_PATH || '.', 'noop.js'));
const { chromium } = require('playwright-core');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];

const failures = [];
const fail = (message) => { failures.push(message); };
let checked = 0;

// --- the output tables, through `gateway-analytics query` -------------------------------------
function query(job, sql) {
  const out = execFileSync(args.binary, ['query', '--config', job, '--format', 'json', sql], { encoding: 'utf8' });
  return out.split('\n').filter((line) => line.trim()).map((line) => JSON.parse(line));
}
const windowFilter = (column) => `${column} BETWEEN DATE '${args.from}' AND DATE '${args.to}'`;

// Exact decimals as strings without trailing zeros; money rounded like the page (half away from zero).
function normal(value) {
  let text = String(value);
  if (text.includes('.')) text = text.replace(/0+$/, '').replace(/\.$/, '');
  return text === '-0' ? '0' : text;
}
function group(digits) {
  const negative = digits.startsWith('-');
  const body = negative ? digits.slice(1) : digits;
  return (negative ? '-' : '') + body.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}
function dollars(value) {
  const [whole, fraction = ''] = normal(value).replace('-', '').split('.');
  const negative = normal(value).startsWith('-');
  const units = BigInt(whole + (fraction + '000000000000').slice(0, 12));
  const unit = 10n ** 10n;
  const cents = (units + unit / 2n) / unit;
  const text = `$${group((cents / 100n).toString())}.${(cents % 100n).toString().padStart(2, '0')}`;
  return negative && cents > 0n ? `-${text}` : text;
}
const count = (value) => group(String(value));

function expectations(job) {
  const rows = (sql) => query(job, sql);
  const money = (sql, key = 'k') => {
    const map = new Map();
    for (const row of rows(sql)) map.set(String(row[key]), { value: normal(row.v), label: dollars(row.v) });
    return map;
  };
  const counts = (sql) => {
    const map = new Map();
    for (const row of rows(sql)) map.set(String(row.k), { value: String(row.v), label: count(row.v) });
    return map;
  };
  const spend = (column) => {
    const map = money(`SELECT CAST(usage_date AS VARCHAR) AS k, CAST(SUM(cost_usd) AS VARCHAR) AS v FROM daily_spend
                       WHERE ${windowFilter('usage_date')} GROUP BY usage_date`);
    for (const [k, v] of money(`SELECT 'series:' || ${column} AS k, CAST(SUM(cost_usd) AS VARCHAR) AS v
                                FROM daily_spend WHERE ${windowFilter('usage_date')} GROUP BY ${column}`)) map.set(k, v);
    return map;
  };
  const heat = (expression) => {
    const map = new Map();
    for (const row of rows(`SELECT endpoint_name || '|' || CAST(usage_date AS VARCHAR) AS k, SUM(${expression}) AS n,
                            SUM(requests) AS r FROM hourly_errors WHERE ${windowFilter('usage_date')}
                            GROUP BY endpoint_name, usage_date`)) {
      const share = row.r > 0 ? ` (${(row.n * 100 / row.r).toFixed(1)}%)` : '';
      map.set(row.k, { count: String(row.n), requests: String(row.r), label: `${count(row.n)} of ${count(row.r)}${share}` });
    }
    return map;
  };
  const latency = new Map();
  for (const row of rows(`SELECT endpoint_name || '|' || entity_name AS k, MAX(p50_latency_ms) AS p50,
                          MAX(p95_latency_ms) AS p95, MAX(p99_latency_ms) AS p99 FROM hourly_errors
                          WHERE ${windowFilter('usage_date')} AND p50_latency_ms IS NOT NULL
                          GROUP BY endpoint_name, entity_name`)) {
    for (const q of ['p50', 'p95', 'p99']) {
      latency.set(`${row.k}|${q}`, { value: String(row[q]), label: `${q} peak ${count(row[q])} ms` });
    }
  }
  const asOf = rows(`SELECT CAST(MAX(as_of_date) AS VARCHAR) AS d FROM rate_limit_recommendations
                     WHERE ${windowFilter('as_of_date')}`)[0]?.d;
  const limits = new Map();
  if (asOf) {
    for (const row of rows(`SELECT * FROM rate_limit_recommendations WHERE as_of_date = DATE '${asOf}'`)) {
      const key = `${row.endpoint_name}|${row.requester}`;
      limits.set(`${key}|calls`, { value: String(row.recommended_calls_per_minute), label: count(row.recommended_calls_per_minute) });
      limits.set(`${key}|calls|refused`, {
        value: `${row.throttled_under_current}|${row.throttled_under_recommended}`,
        label: `${count(row.throttled_under_current)} → ${count(row.throttled_under_recommended)}`,
      });
      if (row.recommended_tokens_per_minute !== null) {
        limits.set(`${key}|tokens`, { value: String(row.recommended_tokens_per_minute), label: count(row.recommended_tokens_per_minute) });
      }
    }
  }
  const traces = new Map();
  const traceRows = rows(`SELECT endpoint_name AS e, SUM(traced) AS t, SUM(orphan_traces) AS o FROM trace_coverage
                          WHERE ${windowFilter('usage_date')} GROUP BY endpoint_name`);
  let [traced, orphans] = [0, 0];
  for (const row of traceRows) {
    traces.set(`${row.e}|traced`, { value: String(row.t), label: count(row.t) });
    traces.set(`${row.e}|orphans`, { value: String(row.o), label: count(row.o) });
    traced += row.t; orphans += row.o;
  }
  traces.set('(all)|traced', { value: String(traced), label: count(traced) });
  traces.set('(all)|orphans', { value: String(orphans), label: count(orphans) });

  const totals = rows(`SELECT CAST(SUM(cost_usd) AS VARCHAR) AS cost, SUM(requests) AS requests FROM daily_spend
                       WHERE ${windowFilter('usage_date')}`)[0];
  const severities = rows(`SELECT severity AS k, COUNT(*) AS v FROM alerts WHERE ${windowFilter('usage_date')} GROUP BY severity`);
  const severity = (name) => severities.find((r) => r.k === name)?.v ?? 0;
  const key = new Map([
    ['cost', { value: normal(totals.cost), label: dollars(totals.cost) }],
    ['requests', { value: String(totals.requests), label: count(totals.requests) }],
    ['critical', { value: String(severity('critical')), label: count(severity('critical')) }],
    ['warning', { value: String(severity('warning')), label: count(severity('warning')) }],
  ]);
  return {
    key,
    'spend-by-team': spend('team'),
    'spend-by-model': spend('entity_name'),
    'top-requesters': money(`SELECT requester AS k, CAST(SUM(cost_usd) AS VARCHAR) AS v FROM daily_spend
                             WHERE ${windowFilter('usage_date')} GROUP BY requester`),
    'top-teams': money(`SELECT team AS k, CAST(SUM(cost_usd) AS VARCHAR) AS v FROM daily_spend
                        WHERE ${windowFilter('usage_date')} GROUP BY team`),
    'error-rate': heat('http_4xx + http_429 + http_5xx'),
    'rate-limited': heat('http_429'),
    latency,
    // Every rule that fired, with both severities (0 where none fired).
    'alert-counts': counts(`SELECT r.rule || '|' || s.severity AS k, COUNT(a.rule) AS v
                            FROM (SELECT DISTINCT rule FROM alerts WHERE ${windowFilter('usage_date')}) r
                            CROSS JOIN (VALUES ('critical'), ('warning')) AS s(severity)
                            LEFT JOIN alerts a ON a.rule = r.rule AND a.severity = s.severity
                                              AND a.${windowFilter('usage_date')}
                            GROUP BY r.rule, s.severity`),
    'rate-limit-changes': limits,
    'default-user-limits': counts(`SELECT endpoint_name AS k, COUNT(*) AS v FROM rate_limit_recommendations
                                   WHERE as_of_date = DATE '${asOf}' AND action = 'add' AND current_calls_rule IS NULL
                                   AND requester <> '(endpoint)' AND endpoint_name <> '(unknown)' GROUP BY endpoint_name`),
    'trace-coverage': traces,
    'data-quality': counts(`SELECT table_name || '.' || check_name AS k,
                            CASE WHEN check_name = 'null_request_time' THEN last_value(failed_rows ORDER BY usage_date)
                                 ELSE SUM(failed_rows) END AS v
                            FROM data_quality WHERE ${windowFilter('usage_date')} GROUP BY table_name, check_name`),
    // The ranking's order and membership, and the ledger.
    ranking: {
      requesters: rows(`SELECT requester AS k FROM daily_spend WHERE ${windowFilter('usage_date')} GROUP BY requester
                        ORDER BY SUM(cost_usd) DESC, requester LIMIT 10`).map((r) => r.k),
      teams: rows(`SELECT team AS k FROM daily_spend WHERE ${windowFilter('usage_date')} GROUP BY team
                   ORDER BY SUM(cost_usd) DESC, team LIMIT 10`).map((r) => r.k),
    },
    ledger: new Map(rows(`SELECT CAST(usage_date AS VARCHAR) AS k, status AS v FROM computed_dates
                          WHERE ${windowFilter('usage_date')}`).map((r) => [r.k, r.v])),
  };
}

// --- the page ---------------------------------------------------------------------------------
async function open(context, file) {
  const page = await context.newPage();
  const problems = [];
  const target = pathToFileURL(file).href;
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') problems.push(`console ${message.type()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`script error: ${error.message}`));
  page.on('request', (request) => {
    if (request.url() !== target) problems.push(`the page requested ${request.url()}`);
  });
  page.on('requestfailed', (request) => {
    if (request.url() !== target) problems.push(`request failed: ${request.url()}`);
  });
  const response = await page.goto(target, { waitUntil: 'load' });
  if (!response || !response.ok()) problems.push(`loading ${target} failed`);
  return { page, problems };
}

async function totals(page) {
  return page.$$eval('.total[data-key]', (elements) => elements.map((element) => ({
    chart: element.closest('[data-chart]')?.getAttribute('data-chart') ?? '(none)',
    key: element.getAttribute('data-key'),
    value: element.getAttribute('data-value'),
    count: element.getAttribute('data-count'),
    requests: element.getAttribute('data-requests'),
    text: element.textContent.trim(),
  })));
}

async function checkReport(page, expected, name) {
  const found = await totals(page);
  if (found.length < 50) fail(`${name}: only ${found.length} labelled totals (expected every chart to label its totals)`);
  const seen = new Map();
  for (const total of found) {
    const where = `${name}: ${total.chart} ${JSON.stringify(total.key)}`;
    seen.set(total.chart, (seen.get(total.chart) ?? 0) + 1);
    if (total.chart === 'key-figures' && total.key === 'changes') {
      const rows = await page.$$eval('[data-chart="rate-limit-changes"] tbody tr.change, [data-chart="default-user-limits"] tbody tr', (r) => r.length);
      if (total.value !== String(rows)) fail(`${where}: says ${total.value} changes, the tables list ${rows}`);
      checked += 1;
      continue;
    }
    const rules = total.chart === 'key-figures' ? expected.key : expected[total.chart];
    if (!rules) { fail(`${where}: no rule checks this chart's totals`); continue; }
    let want = rules.get(total.key);
    if (!want && /^series:other .* \(\d+\)$/.test(total.key)) {
      fail(`${where}: the demo data has too few series for a group of the rest; add a rule for it`);
      continue;
    }
    if (!want) { fail(`${where}: the output tables have no such key`); continue; }
    if ('count' in want) {
      if (total.count !== want.count || total.requests !== want.requests) {
        fail(`${where}: ${total.count} of ${total.requests}, the tables say ${want.count} of ${want.requests}`);
      }
    } else if (normal(total.value) !== want.value) {
      fail(`${where}: data-value ${total.value}, the tables say ${want.value}`);
    }
    if (!total.text.includes(want.label)) fail(`${where}: label "${total.text}" does not show "${want.label}"`);
    checked += 1;
  }
  for (const chart of ['key-figures', 'spend-by-team', 'spend-by-model', 'top-requesters', 'top-teams', 'error-rate',
    'rate-limited', 'latency', 'alert-counts', 'rate-limit-changes', 'trace-coverage', 'data-quality']) {
    if (!seen.get(chart)) fail(`${name}: the chart ${chart} has no labelled total`);
  }
  // Every date of the window has its bar, and every series of the output its legend entry.
  for (const chart of ['spend-by-team', 'spend-by-model', 'error-rate']) {
    const want = [...expected[chart].keys()];
    const have = new Set(found.filter((t) => t.chart === chart).map((t) => t.key));
    for (const key of want) if (!have.has(key)) fail(`${name}: ${chart} has no label for ${key}`);
  }
  // The rankings are the top ten, in order.
  for (const [chart, list] of [['top-requesters', expected.ranking.requesters], ['top-teams', expected.ranking.teams]]) {
    const order = found.filter((t) => t.chart === chart).map((t) => t.key);
    if (JSON.stringify(order) !== JSON.stringify(list)) fail(`${name}: ${chart} lists ${order.join(', ')}; expected ${list.join(', ')}`);
  }
  // The ledger table: one row per date, its status as in computed_dates.
  // (Consecutive dates that say the same are one row: data-from..data-to.)
  const ledger = await page.$$eval('[data-chart="ledger"] tbody tr',
    (rows) => rows.map((r) => [r.dataset.from, r.dataset.to, r.dataset.status]));
  const covered = [];
  for (const [from, to, status] of ledger) {
    for (let day = new Date(`${from}T00:00:00Z`); day <= new Date(`${to}T00:00:00Z`); day.setUTCDate(day.getUTCDate() + 1)) {
      const date = day.toISOString().slice(0, 10);
      covered.push(date);
      const want = expected.ledger.get(date) ?? 'none';
      if (status !== want) fail(`${name}: the ledger row of ${date} says ${status}, computed_dates says ${want}`);
      checked += 1;
    }
  }
  for (let day = new Date(`${args.from}T00:00:00Z`); day <= new Date(`${args.to}T00:00:00Z`); day.setUTCDate(day.getUTCDate() + 1)) {
    const date = day.toISOString().slice(0, 10);
    if (covered.filter((d) => d === date).length !== 1) fail(`${name}: the ledger table shows ${date} ${covered.filter((d) => d === date).length} times`);
  }
  // Self-contained: no script, no external resource.
  const external = await page.$$eval('script, link, img, iframe, object, embed, [src], [href]:not([href^="#"])',
    (elements) => elements.map((e) => e.outerHTML.slice(0, 80)));
  if (external.length) fail(`${name}: the page has scripts or external references: ${external.join(' | ')}`);
}

const browserArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function main() {
  const started = Date.now();
  const expected = expectations(args.job);
  const expectedPartial = expectations(args['partial-job']);
  rmSync(args.profile, { recursive: true, force: true });
  mkdirSync(args.profile, { recursive: true });
  const context = await chromium.launchPersistentContext(args.profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: browserArgs,
    offline: true,
    viewport: { width: 1366, height: 800 },
    deviceScaleFactor: 1,
  });
  // Anything but the page's own file is refused (file:// is not routed; this catches the rest).
  await context.route(/^(?!file:)/, (route) => { fail(`network request: ${route.request().url()}`); return route.abort(); });
  try {
    const html = readFileSync(args.report, 'utf8');
    if (/<script/i.test(html)) fail('the report has a <script>');
    if (/\b(src|href)\s*=\s*['"]?(https?:)?\/\//i.test(html)) fail('the report refers to a URL');

    const { page, problems } = await open(context, args.report);
    await checkReport(page, expected, 'report');
    // The first screen, as docs/report.png shows it.
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(args.screenshots, 'readme.png'), fullPage: true, clip: { x: 0, y: 0, width: 1366, height: 900 } });
    const banner = await page.$('.banner');
    if (banner) fail('report: a window of finished dates shows the unfinished banner');
    const sections = await page.$$eval('section[data-section]', (s) => s.map((e) => e.id));
    for (const id of sections) {
      await page.locator(`#${id}`).screenshot({ path: join(args.screenshots, `section-${id}.png`) });
    }
    await page.screenshot({ path: join(args.screenshots, 'page.png'), fullPage: true });
    await page.locator('header').screenshot({ path: join(args.screenshots, 'section-header.png') });
    await page.emulateMedia({ media: 'print' });
    await page.screenshot({ path: join(args.screenshots, 'page-print.png'), fullPage: true });
    await page.pdf({ path: join(args.screenshots, 'report.pdf'), landscape: true, format: 'A4', printBackground: true });
    await page.emulateMedia({ media: 'screen' });
    // Without colour: the charts must still read (patterns, labels, dashes).
    await page.addStyleTag({ content: 'html { filter: grayscale(1); }' });
    await page.screenshot({ path: join(args.screenshots, 'page-grayscale.png'), fullPage: true });
    for (const id of ['spend', 'errors', 'latency', 'rate-limits']) {
      await page.locator(`#${id}`).screenshot({ path: join(args.screenshots, `grayscale-${id}.png`) });
    }
    problems.forEach((p) => fail(`report: ${p}`));

    const partial = await open(context, args['partial-report']);
    await checkReport(partial.page, expectedPartial, 'partial report');
    const text = await partial.page.$eval('.banner', (b) => b.textContent).catch(() => '');
    if (!/2026-11-03 is partial/.test(text)) fail(`partial report: no banner naming 2026-11-03 as partial (got "${text}")`);
    const marked = await partial.page.$$eval('[data-chart="spend-by-team"] text', (t) => t.some((e) => e.textContent.includes('2026-11-03 ⚠')));
    if (!marked) fail('partial report: the spend chart does not mark 2026-11-03');
    await partial.page.locator('header').screenshot({ path: join(args.screenshots, 'partial-header.png') });
    await partial.page.locator('#provenance').screenshot({ path: join(args.screenshots, 'partial-provenance.png') });
    partial.problems.forEach((p) => fail(`partial report: ${p}`));
  } finally {
    await context.close();
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (failures.length) {
    console.error(`report browser test: ${failures.length} failure(s):\n  ${failures.join('\n  ')}`);
    process.exit(1);
  }
  console.log(`report browser test: ${checked} labelled totals and ledger rows equal the output tables; no console error, ` +
    `no network request; screenshots in ${args.screenshots} (${seconds} s)`);
}

main().catch((error) => { console.error(error); process.exit(1); });
