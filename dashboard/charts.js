// The dashboard's charts, inline SVG drawn from data the pages already load: the run history
// of a pipeline and the throughput of a run. Loaded before app.js; the functions here use its
// DOM and formatting helpers (`h`, `fmtInt`, …) only when called, after both have loaded.
'use strict';

// ---------------------------------------------------------------- charts

// Inline SVG drawn from the API's data, no library. A chart is redrawn whole from its data (a
// few hundred elements at most) at its box's width in CSS pixels, so text stays crisp; colours
// come from classes in style.css, since the page's CSP allows no inline style.
const SVG_NS = 'http://www.w3.org/2000/svg';

/** h() for SVG elements. */
function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child != null && child !== false) el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const compactFormat = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });
/** 950 · 1.2K · 35K · 1.2M: axis labels that fit in a few characters. */
const fmtCompact = (n) => compactFormat.format(n);
/** Axis labels of durations, in one unit per axis (the unit of its top value) and as many
 *  decimals as its step needs: 0 · 2.5 ms · 5 ms, or 0 · 0.5 s · 1.0 s, or 0 · 2 min · 4 min. */
function fmtTick(seconds, { step, top }) {
  if (seconds === 0) return '0';
  const [unit, scale] = top < 1 ? ['ms', 1000] : top < 180 ? ['s', 1] : top < 7200 ? ['min', 1 / 60] : ['h', 1 / 3600];
  const decimals = [0, 1, 2, 3].find((d) => Math.abs(Math.round(step * scale * 10 ** d) - step * scale * 10 ** d) < 1e-6) ?? 3;
  return `${(seconds * scale).toFixed(decimals)} ${unit}`;
}
/** Coordinates rounded to 0.1 px: shorter paths, same picture. */
const px = (v) => Math.round(v * 10) / 10;

/** Round steps from 0 to at least `max` (0, 20, 40, 60, 80 for 74); whole numbers only if
 *  `integer`; time axes step by 1, 2 and 5 only. */
function niceTicks(max, { count = 4, integer = false, steps = [1, 2, 2.5, 5, 10] } = {}) {
  if (!(max > 0)) return { ticks: [0, 1], top: 1, step: 1 };
  const raw = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  let step = steps.map((f) => f * magnitude).find((s) => s >= raw);
  if (integer) step = Math.max(1, Math.ceil(step));
  const top = Math.ceil(max / step - 1e-9) * step;
  const ticks = [];
  for (let i = 0; i * step <= top + step / 2; i += 1) ticks.push(Number((i * step).toPrecision(12)));
  return { ticks, top, step };
}

/** The chart frame in `box` (kept across redraws, so nothing flickers) and the width its
 *  content can take, in CSS pixels. */
function chartFrame(box, id) {
  let frame = box.querySelector(':scope > figure.chart');
  if (!frame) {
    frame = h('figure', { class: 'chart', id });
    fill(box, frame);
  }
  const style = getComputedStyle(frame);
  const inner = frame.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return [frame, inner > 0 ? Math.floor(inner) : 900];
}

/** An SVG of `width` × `height` labelled by a title and a description, for screen readers. */
function chartSvg(id, width, height, title, description, ...children) {
  return svg('svg', {
    width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-labelledby': `${id}-title ${id}-desc`, id,
  }, svg('title', { id: `${id}-title` }, title), svg('desc', { id: `${id}-desc` }, description), children);
}

/** A label near either end of the chart (about 90 px wide) stays inside it. */
const anchorNear = (x, width) => (x < 46 ? 'start' : x > width - 46 ? 'end' : 'middle');
/** Dots as large as the room between them allows. */
const dotRadius = (spacing) => (spacing >= 12 ? 3.5 : spacing >= 6 ? 2.4 : 1.5);

/** Horizontal grid lines with their labels on the left. */
function leftAxis(ticks, y, left, right, format) {
  return svg('g', { class: 'axis' }, ticks.map((t) => [
    svg('line', { class: t === 0 ? 'axis-line' : 'grid-line', x1: left, x2: right, y1: px(y(t)), y2: px(y(t)) }),
    svg('text', { x: left - 8, y: px(y(t)), 'text-anchor': 'end', 'dominant-baseline': 'middle' }, format(t)),
  ]));
}

const HISTORY_CHART_RUNS = 120;

/**
 * A pipeline's runs as a chart, oldest on the left: a bar per run for its rows loaded (left
 * axis), a dot per run for its duration (right axis) joined by a line, an amber mark above
 * runs with rejected rows and a red cross above failed ones. Hovering a run shows its figures;
 * clicking it opens the run. At least 4 px per run: a narrow screen shows the newest that fit.
 */
function historyChart(newestFirst, { width, pipeline, capped }) {
  const height = 240;
  const m = { top: 26, right: 66, bottom: 30, left: 56 };
  const plotW = Math.max(40, width - m.left - m.right);
  const plotH = height - m.top - m.bottom;
  const runsShown = newestFirst.slice(0, Math.max(1, Math.floor(plotW / 4))).reverse();
  const n = runsShown.length;
  const slot = plotW / n;
  const barW = Math.max(1, Math.min(slot * 0.68, 44));
  const rows = niceTicks(Math.max(...runsShown.map((r) => r.rows_loaded)), { integer: true });
  const duration = (r) => (r.status === 'running' ? null : r.duration_seconds);
  const secs = niceTicks(Math.max(0, ...runsShown.map((r) => duration(r) ?? 0)));
  const base = m.top + plotH;
  const yRows = (v) => base - (v / rows.top) * plotH;
  const ySecs = (v) => base - (v / secs.top) * plotH;
  const cx = (i) => m.left + slot * (i + 0.5);

  const bars = [];
  const marks = [];
  runsShown.forEach((r, i) => {
    const top = Math.min(yRows(r.rows_loaded), base - 2); // an empty run still shows a sliver
    bars.push(svg('rect', {
      class: 'hc-bar', x: px(cx(i) - barW / 2), y: px(top), width: px(barW), height: px(base - top),
      rx: Math.min(3, barW / 4), dataset: { run: r.id, status: r.status, loaded: r.rows_loaded },
    }));
    const size = Math.max(5, Math.min(10, barW * 0.6));
    let y = top - 4;
    if (r.rows_rejected > 0) {
      marks.push(svg('path', {
        class: 'hc-reject', dataset: { run: r.id },
        d: `M${px(cx(i) - size / 2)},${px(y - size)}h${px(size)}l${px(-size / 2)},${px(size)}z`,
      }));
      y -= size + 3;
    }
    if (r.status === 'failed') {
      const c = size / 2;
      marks.push(svg('path', {
        class: 'hc-fail', dataset: { run: r.id },
        d: `M${px(cx(i) - c)},${px(y - 2 * c)}l${px(2 * c)},${px(2 * c)}m0,${px(-2 * c)}l${px(-2 * c)},${px(2 * c)}`,
      }));
    }
  });

  // The duration line breaks at runs still going (no duration yet).
  let line = '';
  let pen = false;
  const dots = [];
  runsShown.forEach((r, i) => {
    const d = duration(r);
    if (d == null) {
      pen = false;
      return;
    }
    line += `${pen ? 'L' : 'M'}${px(cx(i))},${px(ySecs(d))}`;
    pen = true;
    dots.push(svg('circle', { class: 'hc-dur', cx: px(cx(i)), cy: px(ySecs(d)), r: dotRadius(slot), dataset: { run: r.id } }));
  });

  // Start times under the bars, as many as fit, always the newest; times alone within one day.
  const oneDay = new Date(runsShown[0].started_ms).toDateString() === new Date(runsShown[n - 1].started_ms).toDateString();
  const labelFormat = oneDay
    ? new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' })
    : new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  const every = Math.ceil(n / Math.max(1, Math.floor(plotW / 110)));
  const labels = runsShown.map((r, i) => ((n - 1 - i) % every === 0
    ? svg('text', { x: px(cx(i)), y: base + 18, 'text-anchor': anchorNear(cx(i), width) }, labelFormat.format(new Date(r.started_ms)))
    : null));

  const hits = runsShown.map((r, i) => svg('rect', {
    class: 'hc-hit', x: px(m.left + slot * i), y: m.top, width: px(slot), height: plotH,
    dataset: { run: r.id },
    onclick: () => { location.hash = `#/runs/${encodeURIComponent(r.id)}`; },
  }, svg('title', {}, [
    `${fmtDateTime(r.started_ms)} · ${r.status}`,
    `${fmtInt(r.rows_loaded)} loaded · ${fmtInt(r.rows_read)} read · ${fmtInt(r.rows_rejected)} rejected`,
    r.status === 'running' ? 'running' : `took ${fmtSeconds(r.duration_seconds)}`,
    `run ${r.id}`,
  ].join('\n'))));

  const rejected = runsShown.filter((r) => r.rows_rejected > 0).length;
  const failed = runsShown.filter((r) => r.status === 'failed').length;
  const stopped = runsShown.filter((r) => r.status === 'cancelled' || r.status === 'interrupted').length;
  const title = `${pipeline}: rows loaded and duration of ${n === 1 ? 'its only run' : `its last ${n} runs`}`;
  const description = `${n} run${n === 1 ? '' : 's'} from ${fmtDateTime(runsShown[0].started_ms)} to `
    + `${fmtDateTime(runsShown[n - 1].started_ms)}; rows loaded per run up to ${fmtInt(Math.max(...runsShown.map((r) => r.rows_loaded)))}; `
    + `${rejected} with rejected rows; ${failed} failed; ${stopped} cancelled or interrupted.`;
  const chart = chartSvg('history-svg', width, height, title, description,
    leftAxis(rows.ticks, yRows, m.left, m.left + plotW, fmtCompact),
    svg('g', { class: 'axis axis-right' }, secs.ticks.map((t) => [
      svg('line', { class: 'tick', x1: m.left + plotW, x2: m.left + plotW + 4, y1: px(ySecs(t)), y2: px(ySecs(t)) }),
      svg('text', { x: m.left + plotW + 8, y: px(ySecs(t)), 'dominant-baseline': 'middle' }, fmtTick(t, secs)),
    ])),
    svg('text', { class: 'axis-title hc-rows-title', x: m.left - 8, y: 12, 'text-anchor': 'end' }, 'rows'),
    svg('text', { class: 'axis-title hc-dur-title', x: m.left + plotW + 8, y: 12 }, 'duration'),
    svg('g', { class: 'hc-bars' }, bars),
    svg('path', { class: 'hc-dur-line', d: line }),
    svg('g', { class: 'hc-durs' }, dots),
    svg('g', { class: 'hc-marks' }, marks),
    svg('g', { class: 'x-labels' }, labels),
    svg('g', { class: 'hc-hits' }, hits));
  return [
    h('figcaption', { class: 'chart-head' },
      h('span', { class: 'chart-title' }, n === 1 ? 'The only run' : `The last ${fmtInt(n)} runs`),
      h('span', { class: 'key key-bar' }, 'rows loaded'),
      h('span', { class: 'key key-dur' }, 'duration'),
      rejected > 0 && h('span', { class: 'key key-reject' }, 'rows rejected'),
      failed > 0 && h('span', { class: 'key key-fail' }, 'failed'),
      stopped > 0 && h('span', { class: 'key key-stop' }, 'cancelled or interrupted'),
      (capped || n < newestFirst.length) && h('span', { class: 'muted' }, '· older runs are in the table'),
      h('span', { class: 'spacer' }),
      h('span', { class: 'muted small' }, 'click a run to open it')),
    chart,
  ];
}

// A run's throughput: rows read per second over time, from its batch_committed events.
const THROUGHPUT_POINTS = 240;
// Batches kept per run page; beyond, neighbours are merged (a run of a million batches).
const THROUGHPUT_SAMPLES_MAX = 50000;
// Event times are whole milliseconds: slices much shorter would show that rounding, not the run.
const THROUGHPUT_SLICE_MIN_MS = 20;

/**
 * The batches of one run as time intervals: a batch of partition P covers the time from P's
 * previous commit (or its worker's start) to its own commit, so the rows it read are spread
 * over the time it took, and partitions loaded side by side add up.
 */
class Throughput {
  constructor() {
    this.start = null;
    this.since = new Map();
    this.samples = [];
    this.batches = 0;
  }

  /** Take one event of the run; true if it changes the curve. */
  add(e) {
    if (e.type === 'run_started') this.start = e.time;
    if (e.type === 'worker_started') this.since.set(e.partition, e.time);
    if (e.type !== 'batch_committed') return false;
    const from = Math.min(this.since.get(e.partition) ?? this.start ?? e.time, e.time);
    this.samples.push({
      from, to: e.time, rows: e.rows_in, loaded: e.rows_out, rejected: e.rejected, partition: e.partition, batches: 1,
    });
    this.since.set(e.partition, e.time);
    this.batches += 1;
    if (this.samples.length > THROUGHPUT_SAMPLES_MAX) this.compact();
    return true;
  }

  compact() {
    const merged = [];
    for (let i = 0; i < this.samples.length; i += 2) {
      const [a, b] = [this.samples[i], this.samples[i + 1]];
      merged.push(!b ? a : {
        from: Math.min(a.from, b.from), to: Math.max(a.to, b.to), rows: a.rows + b.rows, loaded: a.loaded + b.loaded,
        rejected: a.rejected + b.rejected, partition: a.partition === b.partition ? a.partition : null, batches: a.batches + b.batches,
      });
    }
    this.samples = merged;
  }

  /** Up to `max` points {t, rate, …}: one per batch when they fit — the summed rate of every
   *  partition's batch in progress at that commit — else the rows read per time slice (of at
   *  least THROUGHPUT_SLICE_MIN_MS). */
  points(max = THROUGHPUT_POINTS) {
    const samples = this.samples;
    const rate = (s) => s.rows / (Math.max(1, s.to - s.from) / 1000);
    if (samples.length <= max && samples.every((s) => s.batches === 1)) {
      return samples.map((p) => ({
        t: p.to, sample: p,
        rate: samples.reduce((sum, q) => sum + (q === p || (q.from < p.to && p.to <= q.to) ? rate(q) : 0), 0),
      })).sort((a, b) => a.t - b.t);
    }
    const t0 = Math.min(...samples.map((s) => s.from));
    const t1 = Math.max(...samples.map((s) => s.to));
    const count = Math.max(1, Math.min(max, Math.floor((t1 - t0) / THROUGHPUT_SLICE_MIN_MS)));
    const step = Math.max(1, t1 - t0) / count;
    const slices = Array.from({ length: count }, (_, i) => ({ from: t0 + i * step, to: t0 + (i + 1) * step, rows: 0, batches: 0, rejected: 0 }));
    const at = (t) => Math.min(count - 1, Math.max(0, Math.floor((t - t0) / step)));
    for (const s of samples) {
      const last = slices[at(s.to)];
      last.batches += s.batches;
      last.rejected += s.rejected;
      if (s.to <= s.from) {
        last.rows += s.rows;
        continue;
      }
      for (let i = at(s.from); i <= at(s.to); i += 1) {
        const overlap = Math.min(s.to, slices[i].to) - Math.max(s.from, slices[i].from);
        if (overlap > 0) slices[i].rows += (s.rows * overlap) / (s.to - s.from);
      }
    }
    return slices.map((slice) => ({ t: (slice.from + slice.to) / 2, slice, rate: slice.rows / (step / 1000) }));
  }
}

/** The throughput curve: rows read per second (left axis) against the time since the run
 *  started, a point per batch or, for long runs, per time slice; an amber tick on the time
 *  axis under each batch (or slice) with rejected rows. */
function throughputChart(tp, { width, startMs, endMs }) {
  const height = 220;
  const m = { top: 16, right: 24, bottom: 30, left: 56 };
  const plotW = Math.max(40, width - m.left - m.right);
  const points = tp.points(Math.max(10, Math.min(THROUGHPUT_POINTS, Math.floor(plotW / 3))));
  const plotH = height - m.top - m.bottom;
  const base = m.top + plotH;
  const last = points[points.length - 1].t;
  // The x axis ends where the run (or, while it goes, its last batch) ends.
  const span = Math.max(1, Math.max(last, endMs ?? 0) - startMs) / 1000;
  const xs = niceTicks(span, { count: Math.max(2, Math.min(8, Math.floor(plotW / 110))), steps: [1, 2, 5, 10] });
  const ys = niceTicks(Math.max(...points.map((p) => p.rate)));
  const x = (t) => m.left + ((t - startMs) / 1000 / span) * plotW;
  const y = (v) => base - (v / ys.top) * plotH;
  const path = points.map((p, i) => `${i ? 'L' : 'M'}${px(x(p.t))},${px(y(p.rate))}`).join('');
  const sliced = points[0].slice != null;
  // A single batch: its rate over the time it took.
  const area = points.length === 1 && !sliced
    ? `M${px(x(points[0].sample.from))},${base}V${px(y(points[0].rate))}H${px(x(last))}V${base}Z`
    : `${path}L${px(x(last))},${base}L${px(x(points[0].t))},${base}Z`;
  const r = dotRadius(plotW / points.length);
  const rel = (t) => `+${fmtSeconds((t - startMs) / 1000)}`;
  const tip = (p) => (sliced
    ? `${rel(p.slice.from)} – ${rel(p.slice.to)}: ${fmtCompact(p.rate)} rows/s\n${fmtInt(p.slice.batches)} batch${p.slice.batches === 1 ? '' : 'es'} committed · ${fmtInt(Math.round(p.slice.rows))} rows read${p.slice.rejected ? ` · ${fmtInt(p.slice.rejected)} rejected` : ''}`
    : `${rel(p.t)}: ${fmtCompact(p.rate)} rows/s\n${p.sample.partition ?? ''}: batch of ${fmtInt(p.sample.rows)} rows (${fmtInt(p.sample.loaded)} loaded, ${fmtInt(p.sample.rejected)} rejected)`);
  // Each point's hover area reaches halfway to its neighbours.
  const edges = points.map((p, i) => (i === 0 ? m.left : (x(points[i - 1].t) + x(p.t)) / 2)).concat(m.left + plotW);
  const samples = points.map((p, i) => svg('g', { class: 'tp-sample', dataset: { batches: sliced ? p.slice.batches : 1 } },
    svg('rect', { class: 'tp-hit', x: px(edges[i]), y: m.top, width: px(Math.max(1, edges[i + 1] - edges[i])), height: plotH }),
    svg('circle', { class: 'tp-point', cx: px(x(p.t)), cy: px(y(p.rate)), r }),
    svg('title', {}, tip(p))));
  const peak = Math.max(...points.map((p) => p.rate));
  const title = `Throughput: rows read per second over the run, ${sliced ? `${points.length} time slices of ${fmtSeconds((points[0].slice.to - points[0].slice.from) / 1000)} each` : `one point per committed batch (${points.length})`}`;
  const description = `${fmtInt(tp.batches)} batches committed in ${fmtSeconds((last - startMs) / 1000)}; peak ${fmtInt(Math.round(peak))} rows/s.`;
  // Rejects as a rug under the curve: a run where every batch has one still reads clearly.
  const rejectTicks = points.filter((p) => (sliced ? p.slice.rejected : p.sample.rejected) > 0).map((p) =>
    svg('line', { class: 'tp-reject', x1: px(x(p.t)), x2: px(x(p.t)), y1: base - 1, y2: base - 7 }));
  const rejects = rejectTicks.length > 0;
  const unit = sliced ? `${fmtSeconds((points[0].slice.to - points[0].slice.from) / 1000)} slice` : 'batch';
  const caption = h('figcaption', { class: 'chart-head' },
    h('span', { class: 'chart-title' }, 'Rows read per second'),
    h('span', { class: 'key key-point' }, sliced ? `a point per ${unit} (${fmtInt(tp.batches)} batches)` : 'a point per committed batch'),
    rejects && h('span', { class: 'key key-rug' }, `${unit} with rejected rows`),
    h('span', { class: 'spacer' }),
    h('span', { class: 'muted small' }, 'time since the run started →'));
  return [caption, chartSvg('throughput-svg', width, height, title, description,
    leftAxis(ys.ticks, y, m.left, m.left + plotW, fmtCompact),
    svg('g', { class: 'x-labels' }, xs.ticks.filter((t) => t <= span).map((t) =>
      svg('text', { x: px(m.left + (t / span) * plotW), y: base + 18, 'text-anchor': anchorNear(m.left + (t / span) * plotW, width) }, fmtTick(t, xs)))),
    svg('text', { class: 'axis-title', x: m.left - 8, y: 10, 'text-anchor': 'end' }, 'rows/s'),
    svg('path', { class: 'tp-area', d: area }),
    svg('g', { class: 'tp-rejects' }, rejectTicks),
    svg('path', { class: 'tp-line', d: path }),
    svg('g', { class: 'tp-samples', dataset: { points: points.length, batches: tp.batches } }, samples))];
}
