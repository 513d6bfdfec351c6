// report.html in a real browser: a real Carvana run (small overrides), then a second one with one training
// param changed so the timeline has cache hits and re-run reasons; headless Chromium loads the second run's
// report.html, and the test checks the rendered DOM (curves, panels, metrics, timeline, config,
// environment, nothing from the network) and a screenshot (decoded with sharp: right size, not one colour).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { flow, makeFlowHome, setArgs, SMALL_TRAINING } from './helpers.js';

const SMALL = setArgs(SMALL_TRAINING);

/** $CHROMIUM, else the first of Debian's / Ubuntu's / Google's names found on PATH or in /usr/bin. */
function findChromium(): string | null {
  const names = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), '/usr/bin'];
  const candidates = [process.env.CHROMIUM, ...names.flatMap((n) => dirs.map((d) => path.join(d, n)))].filter((c): c is string => !!c);
  return candidates.find((c) => fs.existsSync(c)) ?? null;
}

/** Headless Chromium with everything that could reach the network or a profile switched off. */
function chromium(binary: string, profile: string, args: string[]): Promise<string> {
  const base = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`];
  return new Promise((resolve, reject) => {
    execFile(binary, [...base, ...args], { timeout: 90_000, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${binary} ${args.join(' ')} failed: ${err.message}\n${stderr.slice(-2000)}`));
      else resolve(stdout);
    });
  });
}

/** The inner HTML of the element with this id (the report's sections are not nested in each other). */
function sectionById(dom: string, id: string): string {
  const start = dom.search(new RegExp(`<[a-z]+[^>]* id="${id}"`));
  assert.ok(start >= 0, `the page has an element with id="${id}"`);
  const end = dom.indexOf('</section>', start);
  return dom.slice(start, end < 0 ? undefined : end);
}

test('report.html renders in headless Chromium: curves, panels, metrics, timeline with cache hits, config, environment, no network', { timeout: 300_000 }, async (t) => {
  const binary = findChromium();
  if (binary === null) {
    t.skip('no chromium binary (looked for $CHROMIUM, chromium, chromium-browser, google-chrome on PATH and /usr/bin); install Debian\'s chromium package to run this test');
    return;
  }
  const home = makeFlowHome('flow-e2e-report-');
  const dir = home.dir;
  const first = await flow(home, ['run', 'pipelines/carvana.yaml', ...SMALL]);
  assert.equal(first.code, 0, first.stderr);
  const second = await flow(home, ['run', 'pipelines/carvana.yaml', ...SMALL, '--set', 'train.lr=0.01']);
  assert.equal(second.code, 0, second.stderr);
  const runId = fs.readdirSync(path.join(dir, 'runs', 'carvana')).sort().at(-1)!;
  const runDir = path.join(dir, 'runs', 'carvana', runId);
  const report = path.join(runDir, 'report.html');
  assert.ok(fs.existsSync(report), 'every run folder has report.html');
  const url = pathToFileURL(report).href;
  const profile = path.join(dir, 'chromium-profile');

  const dom = await chromium(binary, profile, ['--dump-dom', url]);
  assert.match(dom, /<html/i, 'Chromium dumped the DOM');

  // Curves: export's plots inline as SVG with drawn paths.
  const plots = dom.match(/<div class="grid" data-output="export\.plots">([\s\S]*?)<\/div><\/section>/);
  assert.ok(plots, 'an export.plots grid');
  const svgs = plots[1]!.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
  assert.ok(svgs.length >= 2, `loss and dice curves as inline SVG, got ${svgs.length}`);
  for (const svg of svgs) assert.match(svg, /<(path|polyline)\b[^>]*\b(d|points)="[^"]{10,}"/, 'each curve has drawn data');
  assert.match(plots[1]!, /val/, 'the curves include validation');

  // Panels: one img with a PNG data: URI per file predict wrote.
  const panelFiles = fs.readdirSync(path.join(runDir, 'stages', 'predict', 'panels')).filter((f) => f.endsWith('.png'));
  assert.ok(panelFiles.length > 0);
  const panels = dom.match(/<div class="grid" data-output="predict\.panels">([\s\S]*?)<\/div><\/section>/);
  assert.ok(panels, 'a predict.panels grid');
  const images = [...panels[1]!.matchAll(/<img [^>]*src="data:image\/png;base64,([A-Za-z0-9+/=]+)"/g)];
  assert.equal(images.length, panelFiles.length, 'one picture per panel file');
  assert.equal(images[0]![1], fs.readFileSync(path.join(runDir, 'stages', 'predict', 'panels', panelFiles.sort()[0]!)).toString('base64'));

  // Metrics: the headline table with this run's numbers, the mean row and one row per case.
  const metrics = JSON.parse(fs.readFileSync(path.join(runDir, 'metrics.json'), 'utf8')) as { dice: number; regions: { car: { per_case: { id: string }[] } } };
  const metricsHtml = sectionById(dom, 'metrics');
  assert.match(metricsHtml, new RegExp(`<th>dice</th><td class="num">${metrics.dice.toFixed(4)}</td>`));
  assert.match(metricsHtml, /id="metrics-means"[\s\S]*car mean/);
  const caseRows = metricsHtml.match(/<table class="data per-case"[\s\S]*?<\/table>/)?.[0].match(/<tr><th>[^<]+<\/th><td/g) ?? [];
  assert.equal(caseRows.length, metrics.regions.car.per_case.length, 'one row per case');

  // Timeline: the unchanged data stages are cache hits, train re-ran and says why.
  const timeline = sectionById(dom, 'timeline');
  for (const stage of ['ingest', 'records', 'dataset', 'preprocess']) assert.match(timeline, new RegExp(`<tr class="stage cached"><th>${stage}</th><td>cache hit</td>`));
  assert.match(timeline, /<tr class="stage done"><th>hparams<\/th>[\s\S]*?param hparams\.lr[^<]*→ 0\.01/);
  assert.match(timeline, /<tr class="stage done"><th>train<\/th>[\s\S]*?input hparams changed/);

  // Config and environment.
  assert.match(sectionById(dom, 'config'), /lr: 0\.01/);
  assert.match(sectionById(dom, 'environment'), new RegExp(`"node": "${process.version}"`));

  // Self-contained: nothing is loaded from the network.
  const remote = dom.match(/\b(src|href)\s*=\s*["']?(https?:)?\/\/[^"'\s>]*/gi) ?? [];
  assert.deepEqual(remote, [], 'no http(s) or protocol-relative src/href');
  assert.ok(!/<(script|link)\b[^>]*\b(src|href)=/i.test(dom), 'no external scripts or stylesheets');

  // Screenshot, saved beside the run folder; decoded to check it shows something.
  const screenshot = path.join(path.dirname(runDir), `${runId}-report.png`);
  await chromium(binary, profile, [`--screenshot=${screenshot}`, '--window-size=1400,3000', '--hide-scrollbars', url]);
  assert.ok(fs.existsSync(screenshot), 'Chromium wrote the screenshot');
  t.diagnostic(`screenshot: ${screenshot}`);
  console.log(`report.html screenshot: ${screenshot}`);
  const image = sharp(screenshot);
  const meta = await image.metadata();
  assert.equal(meta.width, 1400);
  assert.equal(meta.height, 3000);
  assert.ok(fs.statSync(screenshot).size > 50_000, `a rendered page is not a tiny PNG (${fs.statSync(screenshot).size} bytes)`);
  const stats = await image.stats();
  assert.ok(stats.channels.slice(0, 3).some((c) => c.stdev > 20), 'not all one colour');
  // The header bar (dark) and the page (light) both show: the top rows are dark, the body light.
  const { data, info } = await sharp(screenshot).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const brightness = (x: number, y: number): number => {
    const i = (y * info.width + x) * info.channels;
    return (data[i]! + data[i + 1]! + data[i + 2]!) / 3;
  };
  assert.ok(brightness(700, 10) < 80, 'dark header at the top');
  assert.ok(brightness(5, 1500) > 200, 'light page background');
});
