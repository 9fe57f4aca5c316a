// The report's charts: a timeline of every client op, server values and
// latencies over time, all sharing one time window, drawn on canvases from
// the columnar data in #report-data. Status markers (data-rendered,
// data-render-ms, counts) are written into the DOM for tests and tools.
(function () {
  'use strict';
  const started = performance.now();
  const body = document.body;
  window.addEventListener('error', (e) => body.setAttribute('data-error', String(e.message || e)));

  const D = JSON.parse(document.getElementById('report-data').textContent);
  const C = D.calls;
  const N = C.inv.length;
  const END = Math.max(D.end, 1); // µs
  const MINW = 20; // narrowest window, µs

  // ---- columns as typed arrays ----
  const T0 = Float64Array.from(C.t0), T1 = Float64Array.from(C.t1);
  const LANE = Int32Array.from(C.lane), ST = Uint8Array.from(C.st), F = Uint8Array.from(C.f);
  const NODE = Int32Array.from(C.node);
  const num = (v) => (v === null || v === undefined ? NaN : Number(v));
  const VALN = Float64Array.from(C.val, num), CURN = Float64Array.from(C.cur, num);
  const NLANES = D.laneProc.length;
  const STATUS = ['ok', 'fail', 'info', 'pending'];
  const STATUS_COLOR = ['#2e9d4f', '#d63a3a', '#e89a1c', '#9aa0a6'];
  const F_COLOR = { 'get': '#1e88e5', 'set': '#43a047', 'final-get': '#00897b' };
  const NODE_COLORS = ['#1e88e5', '#e53935', '#43a047', '#8e24aa', '#fb8c00', '#00897b', '#6d4c41', '#3949ab', '#c0ca33', '#d81b60'];
  const NEM_COLOR = { partition: [255, 152, 0], link: [156, 39, 176], kill: [211, 47, 47], crash: [121, 85, 72], pause: [30, 136, 229] };
  const nemColor = (kind, a) => { const c = NEM_COLOR[kind] || [96, 125, 139]; return `rgba(${c[0]},${c[1]},${c[2]},${a})`; };
  const nodeColor = (k) => NODE_COLORS[k % NODE_COLORS.length];

  // op index -> call, and nemesis ops by index
  const opCall = new Int32Array(Math.max(D.ops, 1)).fill(-1);
  for (let i = 0; i < N; i++) {
    opCall[C.inv[i]] = i;
    if (C.cmp[i] >= 0) opCall[C.cmp[i]] = i;
  }
  const nemByIndex = new Map(D.nemesis.map((o) => [o.i, o]));

  // each lane's calls, in time order (a process runs one op at a time)
  const laneCount = new Int32Array(NLANES);
  for (let i = 0; i < N; i++) laneCount[LANE[i]]++;
  const laneCalls = Array.from(laneCount, (c) => new Int32Array(c));
  laneCount.fill(0);
  for (let i = 0; i < N; i++) { const l = LANE[i]; laneCalls[l][laneCount[l]++] = i; }

  // ---- formatting ----
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));
  const fmtSec = (us, d) => (us / 1e6).toFixed(d === undefined ? 6 : d) + 's';
  function fmtDur(us) {
    if (us < 1000) return Math.round(us) + 'µs';
    if (us < 1e6) return (us / 1000).toFixed(us < 1e4 ? 2 : 1) + 'ms';
    return (us / 1e6).toFixed(3) + 's';
  }
  function fmtNum(v) {
    if (!isFinite(v)) return '';
    const a = Math.abs(v);
    if (a >= 1e7) return v.toExponential(2);
    return String(Math.round(v));
  }
  const clip = (s, n) => (s.length > n ? s.slice(0, n) + '…' : s);
  const valText = (v) => (v === null || v === undefined ? '' : String(v));

  // ---- the shared time window ----
  const view = { a: 0, b: END, laneOff: 0, sel: new Set(), focus: -1, anomaly: 0 };
  function setWindow(a, b) {
    let w = Math.max(b - a, MINW);
    if (w >= END) { a = 0; b = END; } else {
      if (a < 0) a = 0;
      if (a + w > END) a = END - w;
      b = a + w;
    }
    view.a = a; view.b = b;
    schedule();
  }
  function zoomAt(t, factor) {
    const w = Math.min(Math.max((view.b - view.a) * factor, MINW), END);
    const f = (t - view.a) / (view.b - view.a);
    setWindow(t - f * w, t - f * w + w);
  }

  // ---- canvases ----
  const dpr = window.devicePixelRatio || 1;
  function chart(id) {
    const canvas = document.getElementById(id);
    const c = { canvas, ctx: canvas.getContext('2d'), w: 0, h: Number(canvas.getAttribute('height')), left: 72, right: 12, top: 6, bottom: 20, grid: null };
    c.resize = (h) => {
      if (h) c.h = h;
      c.w = Math.max(canvas.clientWidth || canvas.parentNode.clientWidth || 800, 300);
      canvas.style.height = c.h + 'px';
      canvas.width = Math.round(c.w * dpr);
      canvas.height = Math.round(c.h * dpr);
      c.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    };
    c.plotW = () => c.w - c.left - c.right;
    c.x = (t) => c.left + (t - view.a) / (view.b - view.a) * c.plotW();
    c.t = (x) => view.a + (x - c.left) / c.plotW() * (view.b - view.a);
    return c;
  }
  const ov = chart('overview'), tl = chart('lanes'), vc = chart('valuechart'), lc = chart('latchart');
  ov.left = tl.left; ov.top = 2; ov.bottom = 2;

  function niceStep(span, target) {
    const raw = span / target, p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
    return 10 * p;
  }
  function timeAxis(c, y0, y1) {
    const ctx = c.ctx, step = niceStep(view.b - view.a, Math.max(2, c.plotW() / 110));
    const dec = Math.max(0, Math.ceil(-Math.log10(step / 1e6)));
    ctx.strokeStyle = '#eceff1'; ctx.fillStyle = '#556'; ctx.font = '11px sans-serif'; ctx.textAlign = 'center'; ctx.lineWidth = 1;
    for (let t = Math.ceil(view.a / step) * step; t <= view.b; t += step) {
      const x = Math.round(c.x(t)) + 0.5;
      ctx.beginPath(); ctx.moveTo(x, y0); ctx.lineTo(x, y1); ctx.stroke();
      ctx.fillText(fmtSec(t, dec), x, c.h - 6);
    }
  }
  function bands(c, y0, y1, alpha) {
    const ctx = c.ctx;
    for (const w of D.windows) {
      if (w.t1 < view.a || w.t0 > view.b) continue;
      const x0 = Math.max(c.x(w.t0), c.left), x1 = Math.min(c.x(w.t1), c.w - c.right);
      ctx.fillStyle = nemColor(w.kind, alpha);
      ctx.fillRect(x0, y0, Math.max(x1 - x0, 1), y1 - y0);
    }
    if (D.conv.t0 >= 0) {
      const t1 = D.conv.t1 >= 0 ? D.conv.t1 : END;
      if (t1 >= view.a && D.conv.t0 <= view.b) {
        const x0 = Math.max(c.x(D.conv.t0), c.left), x1 = Math.min(c.x(t1), c.w - c.right);
        ctx.fillStyle = `rgba(46,157,79,${alpha})`;
        ctx.fillRect(x0, y0, Math.max(x1 - x0, 1), y1 - y0);
      }
    }
  }
  function lowerBound(ids, pred) { // first position whose call satisfies pred (pred monotone)
    let lo = 0, hi = ids.length;
    while (lo < hi) { const m = (lo + hi) >> 1; if (pred(ids[m])) hi = m; else lo = m + 1; }
    return lo;
  }

  // ---- timeline layout ----
  const nemRows = D.windows.reduce((m, w) => Math.max(m, w.row + 1), 0) + (D.conv.t0 >= 0 ? 1 : 0);
  const ROW = 15;
  let laneH = 14, visLanes = 1;
  function layoutTimeline() {
    const maxPlot = 560;
    laneH = Math.max(3, Math.min(16, Math.floor(maxPlot / Math.max(NLANES, 1))));
    visLanes = Math.max(1, Math.min(NLANES, Math.floor(maxPlot / laneH)));
    tl.top = nemRows * ROW + 6;
    tl.bottom = 20;
    tl.resize(tl.top + visLanes * laneH + tl.bottom);
    for (const [k, v] of [['left', tl.left], ['right', tl.right], ['top', tl.top], ['lane-height', laneH], ['visible-lanes', visLanes]]) tl.canvas.setAttribute('data-' + k, String(v));
    view.laneOff = Math.max(0, Math.min(view.laneOff, NLANES - visLanes));
  }
  const laneY = (l) => tl.top + (l - view.laneOff) * laneH;

  let drawnBars = 0;
  function drawTimeline() {
    const c = tl, ctx = c.ctx, plotBottom = c.top + visLanes * laneH;
    ctx.clearRect(0, 0, c.w, c.h);
    timeAxis(c, c.top, plotBottom);
    bands(c, c.top, plotBottom, 0.13);
    // nemesis strip: one row per set of non-overlapping windows, convergence last
    ctx.font = '10.5px sans-serif'; ctx.textAlign = 'left'; ctx.textBaseline = 'middle';
    const strip = (x0, x1, row, fill, label) => {
      x0 = Math.max(x0, c.left); x1 = Math.min(x1, c.w - c.right);
      if (x1 < c.left || x0 > c.w - c.right) return;
      const y = 3 + row * ROW;
      ctx.fillStyle = fill; ctx.fillRect(x0, y, Math.max(x1 - x0, 2), ROW - 3);
      if (x1 - x0 > 24) {
        ctx.save(); ctx.beginPath(); ctx.rect(x0, y, x1 - x0, ROW - 3); ctx.clip();
        ctx.fillStyle = '#222'; ctx.fillText(label, x0 + 3, y + (ROW - 3) / 2 + 0.5); ctx.restore();
      }
    };
    for (const w of D.windows) {
      if (w.t1 < view.a || w.t0 > view.b) continue;
      strip(c.x(w.t0), c.x(w.t1), w.row, nemColor(w.kind, 0.45), w.label + (w.i1 < 0 ? ' (never ended)' : ''));
    }
    if (D.conv.t0 >= 0) {
      const t1 = D.conv.t1 >= 0 ? D.conv.t1 : END;
      strip(c.x(D.conv.t0), c.x(t1), nemRows - 1, 'rgba(46,157,79,.4)',
        D.conv.t1 >= 0 ? 'convergence: ' + fmtDur(D.conv.t1 - D.conv.t0) : 'convergence: never converged');
    }
    for (const o of D.nemesis) { // instants of nemesis ops
      if (o.t < view.a || o.t > view.b) continue;
      const x = Math.round(c.x(o.t)) + 0.5;
      ctx.strokeStyle = 'rgba(69,90,100,.55)'; ctx.beginPath(); ctx.moveTo(x, c.top); ctx.lineTo(x, plotBottom); ctx.stroke();
    }
    // lanes: labels, server groups
    const last = Math.min(NLANES, view.laneOff + visLanes);
    ctx.textBaseline = 'middle';
    for (let l = view.laneOff; l < last; l++) {
      const y = laneY(l), node = D.laneNode[l];
      const first = l === view.laneOff || D.laneNode[l - 1] !== node;
      if (l % 2 === 1) { ctx.fillStyle = 'rgba(0,0,0,.025)'; ctx.fillRect(c.left, y, c.plotW(), laneH); }
      if (first) {
        ctx.strokeStyle = '#b0bec5'; ctx.beginPath(); ctx.moveTo(0, y + 0.5); ctx.lineTo(c.w - c.right, y + 0.5); ctx.stroke();
        ctx.fillStyle = node >= 0 ? nodeColor(node) : '#555'; ctx.font = 'bold 11px sans-serif'; ctx.textAlign = 'left';
        ctx.fillText(node >= 0 ? D.nodes[node] : '?', 4, y + Math.max(laneH, 12) / 2);
      }
      if (laneH >= 10) {
        ctx.fillStyle = '#667'; ctx.font = '10px sans-serif'; ctx.textAlign = 'right';
        ctx.fillText('p' + D.laneProc[l], c.left - 5, y + laneH / 2 + 0.5);
      }
    }
    // bars, batched by status; a pixel already painted in a status is not painted again
    const paths = STATUS.map(() => new Path2D());
    const pad = laneH >= 8 ? 2 : laneH >= 5 ? 1 : 0, bh = laneH - 2 * pad;
    const scale = c.plotW() / (view.b - view.a), a = view.a, b = view.b, left = c.left;
    let bars = 0;
    const lastX = new Float64Array(4);
    for (let l = view.laneOff; l < last; l++) {
      const ids = laneCalls[l], y = laneY(l) + pad;
      lastX.fill(-1e9);
      for (let k = lowerBound(ids, (i) => T1[i] >= a); k < ids.length; k++) {
        const i = ids[k];
        if (T0[i] > b) break;
        const s = ST[i];
        let x0 = left + (T0[i] - a) * scale, x1 = left + (T1[i] - a) * scale;
        if (x0 < left - 2) x0 = left - 2;
        if (x1 - x0 < 1) x1 = x0 + 1;
        else if (x1 - x0 >= 4) x1 -= 1; // a gap between a process's consecutive ops
        if (x1 <= lastX[s]) continue;
        if (x0 < lastX[s]) x0 = lastX[s];
        lastX[s] = Math.ceil(x1);
        paths[s].rect(x0, y, x1 - x0, bh);
        bars++;
      }
    }
    for (const s of [0, 3, 2, 1]) { ctx.fillStyle = STATUS_COLOR[s]; ctx.fill(paths[s]); }
    drawnBars = bars;
    // the selection: a guide line through each selected op, and a box around it
    ctx.lineWidth = 2; ctx.strokeStyle = '#c2185b';
    ctx.setLineDash([4, 3]);
    for (const i of view.sel) {
      if (T1[i] < a || T0[i] > b) continue;
      const x = Math.round(c.x((T0[i] + T1[i]) / 2)) + 0.5;
      ctx.strokeStyle = 'rgba(194,24,91,.5)'; ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(x, c.top); ctx.lineTo(x, plotBottom); ctx.stroke();
    }
    ctx.setLineDash([]);
    ctx.lineWidth = 2; ctx.strokeStyle = '#c2185b';
    for (const i of view.sel) {
      const l = LANE[i];
      if (l < view.laneOff || l >= last || T1[i] < a || T0[i] > b) continue;
      const x0 = c.x(T0[i]), x1 = Math.max(c.x(T1[i]), x0 + 1), y = laneY(l);
      ctx.strokeRect(x0 - 3, y - 1, x1 - x0 + 6, laneH + 2);
      if (i === view.focus) {
        ctx.fillStyle = 'rgba(194,24,91,.12)'; ctx.fillRect(c.left, y, c.plotW(), laneH);
      }
    }
    ctx.lineWidth = 1;
    // lane scroll indicator
    if (NLANES > visLanes) {
      const h = plotBottom - c.top, y = c.top + h * view.laneOff / NLANES;
      ctx.fillStyle = 'rgba(0,0,0,.25)';
      ctx.fillRect(c.w - 6, y, 4, Math.max(h * visLanes / NLANES, 8));
    }
    ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, c.left - 1, nemRows * ROW + 4);
    ctx.fillStyle = '#556'; ctx.font = '10px sans-serif'; ctx.textAlign = 'left';
    if (nemRows) ctx.fillText('nemesis', 4, 10);
  }

  function hitTimeline(x, y) {
    const c = tl;
    if (x < c.left || x > c.w - c.right) return null;
    const t = c.t(x), tol = 4 * (view.b - view.a) / c.plotW();
    if (y < c.top) { // the nemesis strip
      const row = Math.floor((y - 3) / ROW);
      if (D.conv.t0 >= 0 && row === nemRows - 1) {
        const t1 = D.conv.t1 >= 0 ? D.conv.t1 : END;
        if (t >= D.conv.t0 - tol && t <= t1 + tol) return { conv: true };
      }
      for (const w of D.windows) if (w.row === row && t >= w.t0 - tol && t <= w.t1 + tol) return { win: w };
      return null;
    }
    const l = view.laneOff + Math.floor((y - c.top) / laneH);
    if (l < 0 || l >= NLANES || l >= view.laneOff + visLanes) return null;
    const ids = laneCalls[l];
    let best = -1, bestD = Infinity;
    for (let k = lowerBound(ids, (i) => T1[i] >= t - tol); k < ids.length; k++) {
      const i = ids[k];
      if (T0[i] > t + tol) break;
      const d = t < T0[i] ? T0[i] - t : t > T1[i] ? t - T1[i] : 0;
      if (d < bestD) { bestD = d; best = i; }
    }
    return best >= 0 ? { call: best } : null;
  }

  // ---- overview ----
  let ovImage = null;
  function renderOverview() {
    const c = ov, cv = document.createElement('canvas');
    cv.width = c.canvas.width; cv.height = c.canvas.height;
    const ctx = cv.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const w = Math.max(1, Math.floor(c.plotW())), h = c.h - c.top - c.bottom;
    const cols = [new Float64Array(w), new Float64Array(w)]; // all, not ok
    for (let i = 0; i < N; i++) {
      const x = Math.min(w - 1, Math.floor(T0[i] / END * w));
      cols[0][x]++;
      if (ST[i] !== 0) cols[1][x]++;
    }
    let m = 1;
    for (let x = 0; x < w; x++) m = Math.max(m, cols[0][x]);
    const sx = (t) => c.left + t / END * w;
    for (const win of D.windows) { ctx.fillStyle = nemColor(win.kind, 0.3); ctx.fillRect(sx(win.t0), c.top, Math.max(sx(win.t1) - sx(win.t0), 1), h); }
    if (D.conv.t0 >= 0) { ctx.fillStyle = 'rgba(46,157,79,.3)'; const t1 = D.conv.t1 >= 0 ? D.conv.t1 : END; ctx.fillRect(sx(D.conv.t0), c.top, Math.max(sx(t1) - sx(D.conv.t0), 1), h); }
    for (let x = 0; x < w; x++) {
      if (!cols[0][x]) continue;
      const hh = Math.max(1, Math.sqrt(cols[0][x] / m) * h), hb = cols[1][x] ? Math.max(1, Math.sqrt(cols[1][x] / m) * h) : 0;
      ctx.fillStyle = '#78909c'; ctx.fillRect(c.left + x, c.top + h - hh, 1, hh);
      if (hb) { ctx.fillStyle = '#d63a3a'; ctx.fillRect(c.left + x, c.top + h - hb, 1, hb); }
    }
    ctx.fillStyle = '#556'; ctx.font = '10px sans-serif'; ctx.textAlign = 'left'; ctx.textBaseline = 'middle';
    ctx.fillText('whole run', 4, c.h / 2);
    ovImage = cv;
  }
  const ovX = (t) => ov.left + t / END * ov.plotW();
  const ovT = (x) => (x - ov.left) / ov.plotW() * END;
  function drawOverview() {
    const c = ov, ctx = c.ctx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, c.canvas.width, c.canvas.height);
    if (ovImage) ctx.drawImage(ovImage, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const x0 = ovX(view.a), x1 = Math.max(ovX(view.b), x0 + 2);
    ctx.fillStyle = 'rgba(255,255,255,.6)';
    ctx.fillRect(c.left, 0, x0 - c.left, c.h);
    ctx.fillRect(x1, 0, c.w - c.right - x1, c.h);
    ctx.strokeStyle = '#1558b0'; ctx.lineWidth = 1.5;
    ctx.strokeRect(x0, 1, x1 - x0, c.h - 2);
    ctx.lineWidth = 1;
  }

  // ---- server values ----
  const valueSeries = []; // per node: Int32Array of calls sorted by completion
  let distinct = new Float64Array(0);
  (function () {
    const per = D.nodes.map(() => []);
    const vals = [];
    for (let i = 0; i < N; i++) {
      if (ST[i] !== 0 || NODE[i] < 0) continue;
      const v = pointValue(i);
      if (isNaN(v)) continue;
      per[NODE[i]].push(i); vals.push(v);
    }
    for (const p of per) { p.sort((x, y) => T1[x] - T1[y]); valueSeries.push(Int32Array.from(p)); }
    distinct = Float64Array.from(new Set(vals)).sort();
  })();
  function pointValue(i) { // what an ok op says its server held
    if (D.fs[F[i]] === 'set') return CURN[i];
    return VALN[i];
  }
  function rankOf(v) { // position of v among the distinct values
    let lo = 0, hi = distinct.length - 1;
    while (lo < hi) { const m = (lo + hi) >> 1; if (distinct[m] < v) lo = m + 1; else hi = m; }
    return lo;
  }
  let valuePoints = 0;
  function drawValues() {
    const c = vc, ctx = c.ctx, linear = document.getElementById('value-scale').value === 'linear';
    c.left = tl.left;
    ctx.clearRect(0, 0, c.w, c.h);
    const y0 = c.top, y1 = c.h - c.bottom;
    timeAxis(c, y0, y1);
    bands(c, y0, y1, 0.10);
    const lo = linear ? (distinct[0] || 0) : 0, hi = linear ? (distinct[distinct.length - 1] || 1) : Math.max(distinct.length - 1, 1);
    const span = hi - lo || 1;
    const Y = (v) => { const u = linear ? v : rankOf(v); return y1 - 4 - (u - lo) / span * (y1 - y0 - 8); };
    c.Y = Y;
    // y ticks
    ctx.fillStyle = '#556'; ctx.font = '10px sans-serif'; ctx.textAlign = 'right'; ctx.textBaseline = 'middle'; ctx.strokeStyle = '#eceff1';
    for (let k = 0; k <= 4 && distinct.length; k++) {
      const v = linear ? lo + span * k / 4 : distinct[Math.round((distinct.length - 1) * k / 4)];
      const y = Math.round(Y(v)) + 0.5;
      ctx.beginPath(); ctx.moveTo(c.left, y); ctx.lineTo(c.w - c.right, y); ctx.stroke();
      ctx.fillText(fmtNum(v), c.left - 4, y);
    }
    c.grid = new Map();
    let pts = 0;
    valueSeries.forEach((ids, node) => {
      const color = nodeColor(node);
      ctx.strokeStyle = color; ctx.fillStyle = color; ctx.lineWidth = 1.2;
      let k = lowerBound(ids, (i) => T1[i] >= view.a);
      if (k > 0) k--;
      const line = new Path2D(), dots = new Path2D();
      let first = true, lastPx = -1e9, lastPy = 0;
      for (; k < ids.length; k++) {
        const i = ids[k], x = c.x(T1[i]), y = Y(pointValue(i));
        if (first) { line.moveTo(x, y); first = false; } else if (Math.abs(x - lastPx) >= 0.5 || y !== lastPy) line.lineTo(x, y);
        if (Math.abs(x - lastPx) >= 1.5 || Math.abs(y - lastPy) >= 1.5) {
          dots.rect(x - 1.5, y - 1.5, 3, 3);
          c.grid.set(((x >> 2) << 12) | ((y >> 2) & 4095), i);
          pts++;
          lastPx = x; lastPy = y;
        }
        if (T1[i] > view.b) break;
      }
      ctx.save(); ctx.beginPath(); ctx.rect(c.left, 0, c.plotW(), c.h); ctx.clip();
      ctx.stroke(line); ctx.fill(dots); ctx.restore();
    });
    ctx.lineWidth = 1;
    for (const i of view.sel) { // highlight selected reads and sets
      if (ST[i] !== 0 || isNaN(pointValue(i)) || T1[i] < view.a || T1[i] > view.b) continue;
      ctx.strokeStyle = '#c2185b'; ctx.lineWidth = 2;
      ctx.strokeRect(c.x(T1[i]) - 5, Y(pointValue(i)) - 5, 10, 10);
      ctx.lineWidth = 1;
    }
    const legend = D.nodes.map((n, k) => `<i class="sw" style="background:${nodeColor(k)}"></i>${esc(n)}`).join(' ');
    const el = document.getElementById('value-legend');
    if (el.innerHTML !== legend) el.innerHTML = legend;
    valuePoints = pts;
  }

  // ---- latency ----
  let latLo = 1, latHi = 6, latencyPoints = 0;
  (function () {
    let mn = Infinity, mx = 0;
    for (let i = 0; i < N; i++) if (ST[i] !== 3) { const d = Math.max(T1[i] - T0[i], 1); if (d < mn) mn = d; if (d > mx) mx = d; }
    if (mx > 0) { latLo = Math.floor(Math.log10(mn)); latHi = Math.max(Math.ceil(Math.log10(mx)), latLo + 1); }
  })();
  function latColor(i) {
    if (ST[i] === 1) return '#d63a3a';
    if (ST[i] === 2) return '#e89a1c';
    return F_COLOR[D.fs[F[i]]] || '#607d8b';
  }
  function drawLatency() {
    const c = lc, ctx = c.ctx;
    c.left = tl.left;
    ctx.clearRect(0, 0, c.w, c.h);
    const y0 = c.top, y1 = c.h - c.bottom;
    timeAxis(c, y0, y1);
    bands(c, y0, y1, 0.10);
    const Y = (us) => y1 - 3 - (Math.log10(Math.max(us, 1)) - latLo) / (latHi - latLo) * (y1 - y0 - 6);
    ctx.fillStyle = '#556'; ctx.font = '10px sans-serif'; ctx.textAlign = 'right'; ctx.textBaseline = 'middle'; ctx.strokeStyle = '#eceff1';
    for (let p = latLo; p <= latHi; p++) {
      const y = Math.round(Y(Math.pow(10, p))) + 0.5;
      ctx.beginPath(); ctx.moveTo(c.left, y); ctx.lineTo(c.w - c.right, y); ctx.stroke();
      ctx.fillText(fmtDur(Math.pow(10, p)), c.left - 4, y);
    }
    c.grid = new Map();
    const paths = new Map(), seen = new Set();
    let pts = 0;
    for (let i = 0; i < N; i++) {
      if (ST[i] === 3 || T0[i] < view.a || T0[i] > view.b) continue;
      const x = c.x(T0[i]), y = Y(T1[i] - T0[i]);
      const key = ((x >> 1) << 12) | ((y >> 1) & 4095);
      const col = latColor(i);
      if (ST[i] === 0 && seen.has(key)) continue; // an ok dot is already here
      seen.add(key);
      c.grid.set(((x >> 2) << 12) | ((y >> 2) & 4095), i);
      let p = paths.get(col);
      if (!p) { p = new Path2D(); paths.set(col, p); }
      p.rect(x - 1.25, y - 1.25, 2.5, 2.5);
      pts++;
    }
    for (const col of ['#1e88e5', '#43a047', '#00897b', '#607d8b', '#e89a1c', '#d63a3a']) {
      const p = paths.get(col);
      if (p) { ctx.fillStyle = col; ctx.fill(p); }
    }
    for (const i of view.sel) {
      if (ST[i] === 3 || T0[i] < view.a || T0[i] > view.b) continue;
      ctx.strokeStyle = '#c2185b'; ctx.lineWidth = 2;
      ctx.strokeRect(c.x(T0[i]) - 5, Y(T1[i] - T0[i]) - 5, 10, 10);
      ctx.lineWidth = 1;
    }
    latencyPoints = pts;
  }
  function hitGrid(c, x, y, pos) {
    if (!c.grid) return null;
    let best = -1, bestD = 36;
    const gx = x >> 2, gy = y >> 2;
    for (let dx = -1; dx <= 1; dx++) for (let dy = -1; dy <= 1; dy++) {
      const i = c.grid.get(((gx + dx) << 12) | ((gy + dy) & 4095));
      if (i === undefined) continue;
      const p = pos(i), d = (p[0] - x) ** 2 + (p[1] - y) ** 2;
      if (d < bestD) { bestD = d; best = i; }
    }
    return best >= 0 ? { call: best } : null;
  }

  // ---- quantiles of the window ----
  let quantTimer = 0;
  function updateQuantiles() {
    const by = new Map();
    for (let i = 0; i < N; i++) {
      if (ST[i] !== 0 || T0[i] < view.a || T0[i] > view.b) continue;
      const f = D.fs[F[i]];
      if (!by.has(f)) by.set(f, []);
      by.get(f).push(T1[i] - T0[i]);
    }
    const all = [];
    for (const v of by.values()) for (const x of v) all.push(x);
    const rows = [...by.keys()].sort().map((f) => [f, by.get(f)]);
    if (rows.length > 1) rows.push(['all', all]);
    const q = (s, p) => s[Math.max(Math.ceil(p * s.length) - 1, 0)];
    let html = '<tr><th>f</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>';
    for (const [f, list] of rows) {
      const s = Float64Array.from(list).sort();
      html += `<tr><th>${esc(f)}</th><td>${s.length}</td><td>${fmtDur(q(s, 0.5))}</td><td>${fmtDur(q(s, 0.9))}</td><td>${fmtDur(q(s, 0.99))}</td><td>${fmtDur(s[s.length - 1])}</td></tr>`;
    }
    if (!rows.length) html += '<tr><td colspan="6" class="muted">no ok op was invoked in this window</td></tr>';
    document.getElementById('lat-table').innerHTML = html;
    document.getElementById('lat-window').textContent = `(${fmtSec(view.a, 3)} to ${fmtSec(view.b, 3)})`;
  }

  // ---- drawing schedule ----
  let pending = false;
  function drawAll() {
    pending = false;
    drawOverview(); drawTimeline(); drawValues(); drawLatency();
    const from = document.getElementById('win-from'), to = document.getElementById('win-to');
    if (document.activeElement !== from) from.value = (view.a / 1e6).toFixed(3);
    if (document.activeElement !== to) to.value = (view.b / 1e6).toFixed(3);
    clearTimeout(quantTimer);
    quantTimer = setTimeout(updateQuantiles, 120);
  }
  function schedule() { // on the next frame, or soon where frames are not drawn (hidden tabs, headless dumps)
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { if (pending) drawAll(); });
    setTimeout(() => { if (pending) drawAll(); }, 100);
  }
  function layout() {
    for (const c of [ov, vc, lc]) c.resize();
    layoutTimeline();
    renderOverview();
  }

  // ---- details and tooltip ----
  function callRows(i) {
    const f = D.fs[F[i]], rows = [];
    rows.push(['op', `${C.inv[i]} invoke at ${fmtSec(T0[i])}` + (C.cmp[i] >= 0 ? `, ${C.cmp[i]} ${STATUS[ST[i]]} at ${fmtSec(T1[i])}` : ', never completed')]);
    rows.push(['process', D.laneProc[LANE[i]]]);
    if (NODE[i] >= 0) rows.push(['node', D.nodes[NODE[i]]]);
    if (C.val[i] !== null) rows.push([f === 'set' ? 'value' : 'read', valText(C.val[i])]);
    if (C.cur[i] !== null) rows.push(['current', valText(C.cur[i])]);
    if (C.app[i] >= 0) rows.push(['applied', C.app[i] ? 'true' : 'false']);
    if (C.err[i] >= 0) rows.push(['error', D.errs[C.err[i]]]);
    rows.push(['latency', ST[i] === 3 ? 'pending at the end of the history' : fmtDur(T1[i] - T0[i])]);
    return `<b>${esc(f)}</b> <span class="pill" style="background:${STATUS_COLOR[ST[i]]}">${STATUS[ST[i]]}</span>` +
      '<table>' + rows.map((r) => `<tr><th>${esc(r[0])}</th><td>${esc(r[1])}</td></tr>`).join('') + '</table>';
  }
  function nemHTML(o) {
    return `<b>${esc(o.f)}</b> op ${o.i} at ${fmtSec(o.t)}<br>${esc(o.label)}` +
      (o.error ? `<br>error: ${esc(clip(o.error, 400))}` : '') +
      (o.value !== undefined ? `<br><code>${esc(clip(JSON.stringify(o.value), 400))}</code>` : '');
  }
  function windowHTML(w) {
    const start = nemByIndex.get(w.i0), stop = w.i1 >= 0 ? nemByIndex.get(w.i1) : null;
    return `<b>${esc(w.label)}</b><br>from ${fmtSec(w.t0)} to ${w.i1 >= 0 ? fmtSec(w.t1) : 'the end (never ended)'}, ${fmtDur(w.t1 - w.t0)}` +
      (start ? '<br>' + nemHTML(start) : '') + (stop ? '<br>' + nemHTML(stop) : '');
  }
  function convHTML() {
    return D.conv.t1 >= 0 ? `<b>convergence</b><br>from the first final read at ${fmtSec(D.conv.t0)}; every server held the final value ${fmtDur(D.conv.t1 - D.conv.t0)} later`
      : `<b>convergence</b><br>final reads from ${fmtSec(D.conv.t0)}; the servers never converged`;
  }
  function hitHTML(h) {
    if (!h) return '';
    if (h.call !== undefined) return callRows(h.call);
    if (h.win) return windowHTML(h.win);
    if (h.conv) return convHTML();
    return '';
  }
  const tip = document.getElementById('tip');
  function showTip(ev, html) {
    if (!html) { tip.hidden = true; return; }
    tip.innerHTML = html; tip.hidden = false;
    const r = tip.getBoundingClientRect();
    let x = ev.clientX + 14, y = ev.clientY + 14;
    if (x + r.width > window.innerWidth - 4) x = ev.clientX - r.width - 14;
    if (y + r.height > window.innerHeight - 4) y = ev.clientY - r.height - 14;
    tip.style.left = Math.max(4, x) + 'px'; tip.style.top = Math.max(4, y) + 'px';
  }
  const details = document.getElementById('details');
  function showDetails(ids, nem) {
    const parts = ids.slice(0, 12).map((i) => `<div class="opblock">${callRows(i)}</div>`);
    if (ids.length > 12) parts.push(`<p class="muted">and ${ids.length - 12} more</p>`);
    for (const o of nem) parts.push(`<div class="opblock">${nemHTML(o)}</div>`);
    details.innerHTML = parts.join('') || '<p class="muted">Nothing selected.</p>';
  }

  // ---- selection ----
  function resolve(index) { // an op index -> {call} or {nem}
    if (index >= 0 && index < opCall.length && opCall[index] >= 0) return { call: opCall[index] };
    const o = nemByIndex.get(index);
    return o ? { nem: o } : null;
  }
  function select(indices, opts) {
    const ids = [], nem = [];
    for (const idx of indices) {
      const r = resolve(idx);
      if (r && r.call !== undefined) { if (!ids.includes(r.call)) ids.push(r.call); } else if (r && !nem.includes(r.nem)) nem.push(r.nem);
    }
    view.sel = new Set(ids);
    view.focus = ids.length ? ids[0] : -1;
    let lo = Infinity, hi = -Infinity;
    for (const i of ids) { lo = Math.min(lo, T0[i]); hi = Math.max(hi, T1[i]); }
    for (const o of nem) { lo = Math.min(lo, o.t); hi = Math.max(hi, o.t); }
    if (lo <= hi && !(opts && opts.keepWindow)) {
      const w = Math.max(3 * (hi - lo), END / 100, 2000);
      const mid = (lo + hi) / 2;
      setWindow(mid - w / 2, mid + w / 2);
    }
    if (view.focus >= 0) {
      const l = LANE[view.focus];
      if (l < view.laneOff || l >= view.laneOff + visLanes) view.laneOff = Math.max(0, Math.min(l - (visLanes >> 1), NLANES - visLanes));
    }
    showDetails(ids, nem);
    details.setAttribute('data-selected-op', indices.join(','));
    details.setAttribute('data-selected-calls', String(ids.length));
    for (const a of document.querySelectorAll('a.opref')) a.classList.toggle('selected', indices.includes(Number(a.dataset.op)));
    schedule();
    return ids.length + nem.length;
  }
  function selectAnomaly(n) {
    const ops = D.anomalies[n - 1];
    if (!ops) return;
    for (const el of document.querySelectorAll('.anomaly')) el.classList.toggle('selected', Number(el.dataset.anomaly) === n);
    view.anomaly = n;
    body.setAttribute('data-selected-anomaly', String(n));
    select(ops);
  }
  function fromHash(scroll) {
    const m = /^#(op|anomaly)=(\d+)$/.exec(location.hash);
    if (!m) return;
    if (m[1] === 'op') select([Number(m[2])]); else selectAnomaly(Number(m[2]));
    if (scroll) document.getElementById('timeline').scrollIntoView({ block: 'start' });
  }

  // ---- interaction ----
  const pos = (c, ev) => { const r = c.canvas.getBoundingClientRect(); return [ev.clientX - r.left, ev.clientY - r.top]; };
  function panZoom(c, hit, lanes) {
    const cv = c.canvas;
    let drag = null;
    // ctrl/⌘+wheel (and pinch) zooms, shift+wheel or a sideways swipe pans,
    // alt+wheel scrolls the lanes; a plain wheel scrolls the page.
    cv.addEventListener('wheel', (ev) => {
      const unit = ev.deltaMode === 1 ? 16 : ev.deltaMode === 2 ? 400 : 1;
      const [x] = pos(c, ev);
      if (ev.ctrlKey || ev.metaKey) {
        zoomAt(c.t(Math.max(c.left, Math.min(x, c.w - c.right))), Math.exp(ev.deltaY * unit * 0.002));
      } else if (ev.altKey && lanes && NLANES > visLanes) {
        const d = Math.sign(ev.deltaY || ev.deltaX) * Math.max(1, Math.round(visLanes / 10));
        view.laneOff = Math.max(0, Math.min(view.laneOff + d, NLANES - visLanes));
        schedule();
      } else if (ev.shiftKey || Math.abs(ev.deltaX) > Math.abs(ev.deltaY)) {
        const dt = (ev.deltaX || ev.deltaY) * unit / c.plotW() * (view.b - view.a);
        setWindow(view.a + dt, view.b + dt);
      } else {
        return;
      }
      ev.preventDefault();
    }, { passive: false });
    cv.addEventListener('mousedown', (ev) => {
      const [x, y] = pos(c, ev);
      drag = { x, y, a: view.a, b: view.b, off: view.laneOff, moved: false };
      cv.classList.add('dragging');
    });
    window.addEventListener('mousemove', (ev) => {
      if (!drag) return;
      const [x, y] = pos(c, ev);
      if (Math.abs(x - drag.x) + Math.abs(y - drag.y) > 3) drag.moved = true;
      if (!drag.moved) return;
      const dt = (x - drag.x) / c.plotW() * (drag.b - drag.a);
      setWindow(drag.a - dt, drag.b - dt);
      if (lanes && NLANES > visLanes) view.laneOff = Math.max(0, Math.min(drag.off - Math.round((y - drag.y) / laneH), NLANES - visLanes));
      tip.hidden = true;
    });
    window.addEventListener('mouseup', (ev) => {
      if (!drag) return;
      const d = drag;
      drag = null;
      cv.classList.remove('dragging');
      if (d.moved) return;
      const [x, y] = pos(c, ev);
      const h = hit(x, y);
      if (h && h.call !== undefined) { select([C.inv[h.call]], { keepWindow: true }); history.replaceState(null, '', '#op=' + C.inv[h.call]); }
      else if (h && h.win) { details.innerHTML = `<div class="opblock">${windowHTML(h.win)}</div>`; }
      else if (h && h.conv) { details.innerHTML = `<div class="opblock">${convHTML()}</div>`; }
    });
    cv.addEventListener('mousemove', (ev) => {
      if (drag && drag.moved) return;
      const [x, y] = pos(c, ev);
      showTip(ev, hitHTML(hit(x, y)));
    });
    cv.addEventListener('mouseleave', () => { tip.hidden = true; });
  }
  panZoom(tl, hitTimeline, true);
  panZoom(vc, (x, y) => hitGrid(vc, x, y, (i) => [vc.x(T1[i]), vc.Y(pointValue(i))]), false);
  panZoom(lc, (x, y) => hitGrid(lc, x, y, (i) => [lc.x(T0[i]), latY(i)]), false);
  function latY(i) {
    const y0 = lc.top, y1 = lc.h - lc.bottom;
    return y1 - 3 - (Math.log10(Math.max(T1[i] - T0[i], 1)) - latLo) / (latHi - latLo) * (y1 - y0 - 6);
  }
  (function overviewBrush() {
    const cv = ov.canvas;
    let drag = null;
    cv.addEventListener('mousedown', (ev) => {
      const [x] = pos(ov, ev), t = ovT(x);
      if (t >= view.a && t <= view.b && view.b - view.a < END) drag = { mode: 'move', t, a: view.a, b: view.b, moved: false };
      else drag = { mode: 'new', t, moved: false };
      ev.preventDefault();
    });
    window.addEventListener('mousemove', (ev) => {
      if (!drag) return;
      const [x] = pos(ov, ev), t = Math.max(0, Math.min(ovT(x), END));
      if (Math.abs(t - drag.t) / END * ov.plotW() > 2) drag.moved = true;
      if (!drag.moved) return;
      if (drag.mode === 'move') setWindow(drag.a + t - drag.t, drag.b + t - drag.t);
      else setWindow(Math.min(t, drag.t), Math.max(t, drag.t));
    });
    window.addEventListener('mouseup', (ev) => {
      if (!drag) return;
      const d = drag;
      drag = null;
      if (d.moved) return;
      const w = view.b - view.a;
      setWindow(d.t - w / 2, d.t + w / 2);
    });
  })();

  for (const b of document.querySelectorAll('[data-zoom]')) {
    b.addEventListener('click', (ev) => {
      ev.preventDefault();
      const mid = (view.a + view.b) / 2, w = view.b - view.a;
      switch (b.dataset.zoom) {
        case 'all': setWindow(0, END); break;
        case 'in': setWindow(mid - w / 4, mid + w / 4); break;
        case 'out': setWindow(mid - w, mid + w); break;
        case 'conv':
          if (D.conv.t0 >= 0) {
            const t1 = D.conv.t1 >= 0 ? D.conv.t1 : END, pad = Math.max((t1 - D.conv.t0) * 0.3, 1000);
            setWindow(D.conv.t0 - pad, t1 + pad);
            document.getElementById('timeline').scrollIntoView({ block: 'start' });
          }
          break;
      }
    });
  }
  for (const id of ['win-from', 'win-to']) {
    document.getElementById(id).addEventListener('change', () => {
      const a = Number(document.getElementById('win-from').value) * 1e6, b = Number(document.getElementById('win-to').value) * 1e6;
      if (isFinite(a) && isFinite(b) && b > a) setWindow(a, b);
    });
  }
  document.getElementById('value-scale').addEventListener('change', schedule);
  for (const b of document.querySelectorAll('[data-copy]')) {
    b.addEventListener('click', () => {
      const text = document.getElementById(b.dataset.copy).textContent;
      const done = () => { b.textContent = 'copied'; setTimeout(() => { b.textContent = 'copy'; }, 1200); };
      if (navigator.clipboard) navigator.clipboard.writeText(text).then(done, () => selectText(b.dataset.copy));
      else selectText(b.dataset.copy);
    });
  }
  function selectText(id) {
    const r = document.createRange(); r.selectNodeContents(document.getElementById(id));
    const s = window.getSelection(); s.removeAllRanges(); s.addRange(r);
  }

  // anomaly and op links
  let linked = 0, unlinked = 0;
  for (const a of document.querySelectorAll('a.opref')) {
    const r = resolve(Number(a.dataset.op));
    a.setAttribute('data-linked', r ? (r.call !== undefined ? 'call' : 'nemesis') : 'none');
    if (r) linked++; else { unlinked++; a.classList.add('unlinked'); a.title = 'this op is not in the recorded history'; }
    a.addEventListener('click', (ev) => {
      ev.preventDefault();
      const anomaly = a.closest('.anomaly');
      if (anomaly) for (const el of document.querySelectorAll('.anomaly')) el.classList.toggle('selected', el === anomaly);
      history.replaceState(null, '', '#op=' + a.dataset.op);
      select([Number(a.dataset.op)]);
      document.getElementById('timeline').scrollIntoView({ block: 'start', behavior: 'smooth' });
    });
  }
  for (const a of document.querySelectorAll('a.anomaly-link')) {
    a.addEventListener('click', (ev) => {
      ev.preventDefault();
      history.replaceState(null, '', '#anomaly=' + a.dataset.anomaly);
      selectAnomaly(Number(a.dataset.anomaly));
      document.getElementById('timeline').scrollIntoView({ block: 'start', behavior: 'smooth' });
    });
  }
  window.addEventListener('hashchange', () => fromHash(true));
  let resizeTimer = 0;
  window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => { layout(); drawAll(); }, 100); });

  // ---- first render, synchronously, then the status markers ----
  layout();
  fromHash(false);
  drawAll();
  updateQuantiles();
  const set = (id, attrs) => { const el = document.getElementById(id); for (const k in attrs) el.setAttribute(k, String(attrs[k])); };
  set('timeline', { 'data-rendered': 'true', 'data-calls': N, 'data-lanes': NLANES, 'data-bars': drawnBars, 'data-windows': D.windows.length, 'data-nemesis-ops': D.nemesis.length });
  set('values', { 'data-rendered': 'true', 'data-points': valuePoints, 'data-series': valueSeries.length });
  set('latency', { 'data-rendered': 'true', 'data-points': latencyPoints });
  set('anomalies', { 'data-linked-refs': linked, 'data-unlinked-refs': unlinked });
  body.setAttribute('data-ops', String(D.ops));
  body.setAttribute('data-render-ms', (performance.now() - started).toFixed(1));
  body.setAttribute('data-page-ms', performance.now().toFixed(1));
  body.setAttribute('data-rendered', 'true');
})();
