"use strict";
// The replay page: reads the run's numbers from the #run-data element and draws
// the network, the charts and the sweeps.  Everything is local; nothing is fetched.
(function () {
  const D = JSON.parse(document.getElementById("run-data").textContent);
  const SVG = "http://www.w3.org/2000/svg";

  // ---- numbers ---------------------------------------------------------------

  function bytes(b64) {
    const s = atob(b64);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }

  // little-endian arrays, whatever the machine's own byte order
  function little(b64, Type, read) {
    const b = bytes(b64);
    const view = new DataView(b.buffer);
    const out = new Type(b.length / Type.BYTES_PER_ELEMENT);
    for (let i = 0; i < out.length; i++) out[i] = read(view, i * Type.BYTES_PER_ELEMENT);
    return out;
  }
  const floats = (b64) => little(b64, Float64Array, (view, at) => view.getFloat64(at, true));
  const uints32 = (b64) => little(b64, Uint32Array, (view, at) => view.getUint32(at, true));

  // A float64 exactly as Python's repr() prints it: the shortest digits that read back
  // as the same float, in Python's choice of plain or exponent notation.
  function pyRepr(x) {
    if (Number.isNaN(x)) return "nan";
    if (x === Infinity) return "inf";
    if (x === -Infinity) return "-inf";
    if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
    const [mantissa, e] = x.toExponential().split("e");
    const exp = parseInt(e, 10);
    const sign = mantissa[0] === "-" ? "-" : "";
    const digits = mantissa.replace("-", "").replace(".", "");
    let body;
    if (exp < -4 || exp >= 16) {
      body = digits[0] + (digits.length > 1 ? "." + digits.slice(1) : "") +
        "e" + (exp < 0 ? "-" : "+") + String(Math.abs(exp)).padStart(2, "0");
    } else if (exp >= 0) {
      body = digits.length <= exp + 1
        ? digits + "0".repeat(exp + 1 - digits.length) + ".0"
        : digits.slice(0, exp + 1) + "." + digits.slice(exp + 1);
    } else {
      body = "0." + "0".repeat(-exp - 1) + digits;
    }
    return sign + body;
  }

  // rounded, for labels and logs only
  function fmt(x) {
    if (x === undefined || Number.isNaN(x)) return "—";
    if (x === 0) return "0";
    const a = Math.abs(x);
    if (a >= 1e5 || a < 1e-3) return x.toExponential(2);
    return String(Number(x.toPrecision(4)));
  }

  const N = D.nodes.length, E = D.edges.length, S = D.steps.length;
  const NV = floats(D.nodeValues), EV = floats(D.edgeValues), SV = floats(D.stepValues);
  const NF = D.nodeFields.length, EF = D.edgeFields.length, SF = D.stepFields.length;
  const field = (names) => Object.fromEntries(names.map((name, i) => [name, i]));
  const NFI = field(D.nodeFields), EFI = field(D.edgeFields), SFI = field(D.stepFields);
  const nodeValue = (k, i, name) => NV[(k * N + i) * NF + NFI[name]];
  const edgeValue = (k, j, name) => EV[(k * E + j) * EF + EFI[name]];
  const stepValue = (k, name) => SV[k * SF + SFI[name]];
  const nodePresent = (k, i) => !Number.isNaN(nodeValue(k, i, "bias"));
  const edgePresent = (k, j) => !Number.isNaN(edgeValue(k, j, "weight"));
  const frozen = (k, j) => (D.frozen[String(k)] || []).includes(j);
  const H = {};
  for (const key of Object.keys(D.history)) H[key] = floats(D.history[key]);
  const T = {};  // the held-out set's loss and accuracy after each evaluated step, if the run had one
  for (const key of Object.keys(D.heldOut || {})) T[key] = floats(D.heldOut[key]);

  // ---- state -------------------------------------------------------------------

  let k = 0;
  let speed = 1;
  let mode = "activations";
  let selected = null;  // {kind: "node" | "edge", i}
  let playTimer = null;
  let sweep = null;

  const $ = (id) => document.getElementById(id);
  const esc = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  function el(tag, attrs, parent) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (parent) parent.appendChild(node);
    return node;
  }
  // The GIFs' colours: a colour map (256 entries) read at u in [0, 1] ...
  const L = D.look;
  function colour(map, u) {
    const clipped = Math.max(0, Math.min(1, Number.isNaN(u) ? 0.5 : u));
    return L[map][Math.round(clipped * 255)];
  }
  // ... through a linear norm on [-m, m], or a square-root one that spreads small magnitudes
  const linear = (x, m) => (x / m + 1) / 2;
  const root = (x, m) => (Math.sign(x) * Math.sqrt(Math.abs(x) / m) + 1) / 2;
  const WIDTH_PX = 1.3;  // the GIFs' widths are points on a figure a little smaller than this picture
  const width = (fraction) => WIDTH_PX * (L.minWidth + (L.maxWidth - L.minWidth) * Math.min(1, fraction));

  // ---- the network picture -----------------------------------------------------

  // tall enough for the fullest column to get about 34 px a neuron
  const fullest = Math.max(...Object.values(D.positions.reduce((count, [x]) => {
    count[x] = (count[x] || 0) + 1;
    return count;
  }, {})));
  const W = 900, MARGIN = 46, HEIGHT = Math.round(Math.max(440, Math.min(1400, 2 * MARGIN + 34 * fullest)));
  const svg = $("network");
  svg.setAttribute("viewBox", `0 0 ${W} ${HEIGHT}`);
  const xy = D.positions.map(([x, y]) => [MARGIN + x * (W - 2 * MARGIN), MARGIN + y * (HEIGHT - 2 * MARGIN)]);
  const radius = (function () {
    let closest = Infinity;
    if (N <= 600) {
      for (let a = 0; a < N; a++) for (let b = a + 1; b < N; b++) {
        closest = Math.min(closest, Math.hypot(xy[a][0] - xy[b][0], xy[a][1] - xy[b][1]));
      }
    }
    return Math.max(3, Math.min(18, 0.36 * (closest === Infinity ? 10 : closest)));
  })();
  const labelSize = Math.max(7, Math.min(12, radius * 1.1));
  const edgeLayer = el("g", {}, svg), labelLayer = el("g", {}), nodeLayer = el("g", {}, svg);
  svg.appendChild(labelLayer);
  const edgeLines = [], edgeHits = [], nodeGroups = [];
  D.edges.forEach(([s, t], j) => {
    const attrs = {x1: xy[s][0], y1: xy[s][1], x2: xy[t][0], y2: xy[t][1]};
    const line = el("line", {...attrs, class: "edge", "data-edge": j}, edgeLayer);
    const hit = el("line", {...attrs, class: "edge-hit", "data-edge": j}, edgeLayer);
    const title = el("title", {}, hit);
    title.textContent = `${D.nodes[s].name} → ${D.nodes[t].name}`;
    hit.addEventListener("click", () => select({kind: "edge", i: j}));
    edgeLines.push(line);
    edgeHits.push(hit);
  });
  const names = D.nodes.map((n) => esc(n.name));
  D.nodes.forEach((n, i) => {
    const g = el("g", {class: `node ${n.role}`, "data-name": n.name}, nodeLayer);
    shape(n.role, xy[i], g);
    // names sit left of their neuron, where a column has room and a neighbour above or below has none
    const label = el("text", {x: xy[i][0] - 1.3 * radius - 3, y: xy[i][1] + labelSize / 3,
                              "font-size": labelSize, "text-anchor": "end"}, g);
    label.textContent = n.name;
    g.addEventListener("mouseenter", (ev) => showTooltip(i, ev));
    g.addEventListener("mousemove", (ev) => moveTooltip(ev));
    g.addEventListener("mouseleave", hideTooltip);
    g.addEventListener("click", () => select({kind: "node", i}));
    nodeGroups.push(g);
  });

  // the GIFs' markers: a square for an input, a circle for a hidden neuron, a diamond for an output
  function shape(role, [x, y], parent) {
    if (role === "input") {
      const side = 1.7 * radius;
      return el("rect", {class: "shape", x: x - side / 2, y: y - side / 2, width: side, height: side}, parent);
    }
    if (role === "output") {
      const r = 1.25 * radius;
      return el("polygon", {class: "shape", points: `${x},${y - r} ${x + r},${y} ${x},${y + r} ${x - r},${y}`}, parent);
    }
    return el("circle", {class: "shape", cx: x, cy: y, r: radius}, parent);
  }

  function nodeColour(kk, i, quantity) {
    const v = nodeValue(kk, i, quantity);
    if (Number.isNaN(v)) return L.unknown;
    return quantity === "activation" ? colour("values", linear(v, D.scales.activation))
      : colour("gradients", root(v, D.scales.gradient));
  }

  function weightChange(kk, j) {
    if (kk === 0 || !edgePresent(kk - 1, j)) return 0;
    return edgeValue(kk, j, "weight") - edgeValue(kk - 1, j, "weight");
  }

  function drawNetwork() {
    for (let j = 0; j < E; j++) {
      const line = edgeLines[j], present = edgePresent(k, j);
      line.classList.toggle("absent", !present);
      edgeHits[j].classList.toggle("absent", !present);
      if (!present) continue;
      const w = edgeValue(k, j, "weight");
      let stroke, size;
      if (mode === "activations") {
        stroke = w < 0 ? L.negative : L.positive;
        size = width(Math.abs(w) / D.scales.weight);
      } else {
        const u = root(weightChange(k, j), D.scales.change);
        stroke = colour("changes", u);
        size = width(Math.abs(2 * u - 1));
      }
      line.setAttribute("stroke", stroke);
      line.setAttribute("stroke-opacity", mode === "activations" ? "0.85" : "1");
      line.setAttribute("stroke-width", size.toFixed(2));
      line.setAttribute("stroke-dasharray", frozen(k, j) ? "5 4" : "none");
    }
    const quantity = mode === "activations" ? "activation" : "gradient";
    for (let i = 0; i < N; i++) {
      const present = nodePresent(k, i);
      nodeGroups[i].classList.toggle("absent", !present);
      if (present) nodeGroups[i].firstChild.setAttribute("fill", nodeColour(k, i, quantity));
    }
    drawLegend();
  }

  function bar(map, label, scale, spread) {
    const stops = [];
    for (let i = 0; i <= 16; i++) stops.push(L[map][Math.round(i * 255 / 16)]);
    return `<span>${label}: −${fmt(scale)}<span class="bar" style="background: linear-gradient(to right, ` +
      `${stops.join(", ")})"></span>+${fmt(scale)}${spread ? " (square-root scale)" : ""}</span>`;
  }

  function drawLegend() {
    const s = D.scales;
    const swatch = (c) => `<span class="swatch" style="background: ${c}"></span>`;
    $("legend").innerHTML = (mode === "activations"
      ? bar("values", "neuron: activation (batch mean)", s.activation, false) +
        `<span>connection: ${swatch(L.positive)} weight &gt; 0 ${swatch(L.negative)} weight &lt; 0, ` +
        `width: |weight|, thickest ${fmt(s.weight)}</span>`
      : bar("gradients", "neuron: gradient dL/dz (batch mean)", s.gradient, true) +
        bar("changes", "connection: weight change since the previous step shown", s.change, true) +
        `<span>width: |change|, thickest ${fmt(s.change)}</span>`) +
      `<span>■ input · ● hidden · ◆ output · dashed line: frozen connection · grey: no value yet</span>`;
  }

  // ---- status, details, tooltip ----------------------------------------------

  function drawStatus() {
    $("step-number").textContent = `${D.steps[k]}`;
    $("step-loss").textContent = pyRepr(stepValue(k, "loss"));
    $("step-accuracy").textContent = pyRepr(stepValue(k, "accuracy"));
    $("accuracy-box").hidden = Number.isNaN(stepValue(k, "accuracy")) && D.steps[k] > 0;
    $("step-lr").textContent = pyRepr(stepValue(k, "lr"));
    for (const id of ["step-loss", "step-accuracy", "step-lr"]) {
      if ($(id).textContent === "nan") $(id).textContent = "—";
    }
  }

  function exact(x) {
    return Number.isNaN(x) ? "—" : pyRepr(x);
  }

  function row(label, value, name) {
    return `<tr><th>${label}</th><td class="num" data-field="${name}">${exact(value)}</td></tr>`;
  }

  function incoming(kk, i) {
    const out = [];
    for (let j = 0; j < E; j++) if (D.edges[j][1] === i && edgePresent(kk, j)) out.push(j);
    return out;
  }

  function neuronDetails(i) {
    const n = D.nodes[i], name = names[i];
    if (!nodePresent(k, i)) return `<h2>${name}</h2><p>not in the network at step ${D.steps[k]}.</p>`;
    const v = (name) => nodeValue(k, i, name);
    let html = `<h2>${name} <small>${n.role} · ${esc(n.fn)}</small></h2>` +
      `<p class="hint">step ${D.steps[k]} · exact float64 values (Python repr)</p>` +
      `<table id="neuron-table" data-name="${name}" data-step="${D.steps[k]}">` +
      row("activation a", v("activation"), "activation") +
      row("pre-activation z", v("preactivation"), "preactivation") +
      row("bias b", v("bias"), "bias") +
      row("gradient dL/dz", v("gradient"), "gradient") +
      row("dL/db", v("bias_grad"), "bias_grad") + "</table>" +
      `<p class="hint">a, z and dL/dz are batch means over this step's batch; b is the bias after the step's update, dL/db its gradient.</p>`;
    const inbound = incoming(k, i);
    if (inbound.length) {
      let sum = v("bias");
      html += `<h2>Incoming messages <small>(a·w, batch mean)</small></h2><table id="messages-table">` +
        `<tr><th>from</th><th>message</th><th>weight</th></tr>`;
      for (const j of inbound) {
        const m = edgeValue(k, j, "message");
        sum += m;
        const source = names[D.edges[j][0]];
        html += `<tr data-source="${source}"><td>${source}</td>` +
          `<td class="num" data-field="message">${exact(m)}</td>` +
          `<td class="num" data-field="weight">${exact(edgeValue(k, j, "weight"))}</td></tr>`;
      }
      html += `</table><p class="hint">weight: after the step's update; the message was sent with the weight before it.</p>`;
      if (!Number.isNaN(sum)) html += `<p class="hint">Σ messages + bias ≈ ${fmt(sum)} (the mean z, up to rounding and the bias update)</p>`;
    }
    return html;
  }

  function connectionDetails(j) {
    const [s, t] = D.edges[j];
    const name = `${names[s]} → ${names[t]}`;
    if (!edgePresent(k, j)) return `<h2>${name}</h2><p>not in the network at step ${D.steps[k]}.</p>` + weightChart(j);
    return `<h2>${name}${frozen(k, j) ? " <small>frozen</small>" : ""}</h2>` +
      `<p class="hint">at step ${D.steps[k]}; exact float64 values</p><table id="connection-table">` +
      row("weight (after the step)", edgeValue(k, j, "weight"), "weight") +
      row("gradient dL/dw", edgeValue(k, j, "grad"), "grad") +
      row("update (new − old)", edgeValue(k, j, "delta"), "delta") +
      row("message a·w (mean)", edgeValue(k, j, "message"), "message") + "</table>" + weightChart(j);
  }

  function weightChart(j) {
    const w = 300, h = 150, left = 64, right = 8, top = 10, bottom = 24;
    const pts = [];
    for (let kk = 0; kk < S; kk++) if (edgePresent(kk, j)) pts.push([D.steps[kk], edgeValue(kk, j, "weight"), kk]);
    if (!pts.length) return "";
    const x0 = D.steps[0], x1 = Math.max(D.steps[S - 1], x0 + 1);
    let y0 = Math.min(...pts.map((p) => p[1])), y1 = Math.max(...pts.map((p) => p[1]));
    if (y0 === y1) { y0 -= 0.5; y1 += 0.5; }
    const X = (s) => left + (s - x0) / (x1 - x0) * (w - left - right);
    const Y = (v) => top + (y1 - v) / (y1 - y0) * (h - top - bottom);
    const line = pts.map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" ");
    const now = pts.find((p) => p[2] === k);
    return `<h2>Weight over the steps shown</h2><svg id="weight-chart" viewBox="0 0 ${w} ${h}" width="100%">` +
      `<line class="chart-axis" x1="${left}" y1="${h - bottom}" x2="${w - right}" y2="${h - bottom}"/>` +
      `<line class="chart-axis" x1="${left}" y1="${top}" x2="${left}" y2="${h - bottom}"/>` +
      `<line class="chart-now" x1="${X(D.steps[k])}" y1="${top}" x2="${X(D.steps[k])}" y2="${h - bottom}"/>` +
      `<polyline class="chart-weight" points="${line}"/>` +
      (now ? `<circle class="chart-dot" cx="${X(now[0])}" cy="${Y(now[1])}" r="3"/>` : "") +
      `<text class="chart-label" x="${left - 4}" y="${top + 8}" text-anchor="end">${fmt(y1)}</text>` +
      `<text class="chart-label" x="${left - 4}" y="${h - bottom}" text-anchor="end">${fmt(y0)}</text>` +
      `<text class="chart-label" x="${left}" y="${h - 8}">step ${x0}</text>` +
      `<text class="chart-label" x="${w - right}" y="${h - 8}" text-anchor="end">${x1}</text></svg>`;
  }

  function drawDetails() {
    for (const g of nodeGroups) g.classList.remove("selected");
    for (const line of edgeLines) line.classList.remove("selected");
    if (!selected) return;
    if (selected.kind === "node") {
      nodeGroups[selected.i].classList.add("selected");
      $("details").innerHTML = neuronDetails(selected.i);
    } else {
      edgeLines[selected.i].classList.add("selected");
      $("details").innerHTML = connectionDetails(selected.i);
    }
  }

  function select(what) {
    selected = what;
    drawDetails();
  }

  const tooltip = $("tooltip");
  function showTooltip(i, ev) {
    const v = (name) => fmt(nodeValue(k, i, name));
    tooltip.innerHTML = `<b>${names[i]}</b> (${esc(D.nodes[i].fn)})<br>activation ${v("activation")}<br>` +
      `bias ${v("bias")}<br>gradient ${v("gradient")}<br><small>click for exact values and messages</small>`;
    tooltip.hidden = false;
    moveTooltip(ev);
    if (!selected || selected.kind !== "node") $("details").innerHTML = neuronDetails(i);
  }
  function moveTooltip(ev) {
    tooltip.style.left = `${ev.clientX + 14}px`;
    tooltip.style.top = `${ev.clientY + 10}px`;
  }
  function hideTooltip() {
    tooltip.hidden = true;
    if (!selected) $("details").innerHTML = `<p class="hint">Hover over a neuron to see its numbers; click a neuron or a connection to keep it here.</p>`;
    else drawDetails();
  }

  // ---- loss chart --------------------------------------------------------------

  const lossSvg = $("loss-chart");
  let lossX = null;
  function moveLossMarker() {
    const now = $("loss-now");
    if (!now || !lossX) return;
    now.setAttribute("x1", lossX(D.steps[k]));
    now.setAttribute("x2", lossX(D.steps[k]));
  }
  function drawLossChart() {
    const w = lossSvg.clientWidth || 700, h = 220, left = 56, right = 40, top = 12, bottom = 26;
    lossSvg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    lossSvg.innerHTML = "";
    const steps = H.step || new Float64Array(0), loss = H.loss || new Float64Array(0);
    const x0 = Math.min(D.steps[0], steps.length ? steps[0] : D.steps[0]);
    const x1 = Math.max(D.lastStep, D.steps[S - 1], x0 + 1);
    const finite = Array.from(loss).concat(Array.from(T.loss || [])).filter(Number.isFinite);
    const lo = finite.length ? Math.min(...finite) : 0, hi = finite.length ? Math.max(...finite) : 1;
    const logScale = lo > 0 && hi / lo > 100;
    const tf = logScale ? Math.log10 : (v) => v;
    const y0 = tf(logScale ? lo : Math.min(0, lo)), y1 = tf(hi) === y0 ? y0 + 1 : tf(hi);
    const X = (s) => left + (s - x0) / (x1 - x0) * (w - left - right);
    const Y = (v) => top + (y1 - tf(v)) / (y1 - y0) * (h - top - bottom);
    const A = (v) => top + (1 - v) * (h - top - bottom);
    lossX = X;
    el("line", {class: "chart-axis", x1: left, y1: h - bottom, x2: w - right, y2: h - bottom}, lossSvg);
    el("line", {class: "chart-axis", x1: left, y1: top, x2: left, y2: h - bottom}, lossSvg);
    const lossPts = [], accPts = [];
    for (let i = 0; i < steps.length; i++) {
      if (Number.isFinite(loss[i])) lossPts.push(`${X(steps[i]).toFixed(1)},${Y(loss[i]).toFixed(1)}`);
      if (H.accuracy && Number.isFinite(H.accuracy[i])) accPts.push(`${X(steps[i]).toFixed(1)},${A(H.accuracy[i]).toFixed(1)}`);
    }
    el("polyline", {class: "chart-loss", points: lossPts.join(" ")}, lossSvg);
    if (T.step) {  // held out: a dashed line with a dot at each evaluated step, loss and accuracy alike
      for (const [values, scale, kind] of [[T.loss, Y, "loss"], [T.accuracy, A, "accuracy"]]) {
        const pts = [];
        for (let i = 0; i < T.step.length; i++) {
          if (!Number.isFinite(values[i])) continue;
          pts.push(`${X(T.step[i]).toFixed(1)},${scale(values[i]).toFixed(1)}`);
          el("circle", {class: `chart-test-${kind}`, cx: X(T.step[i]), cy: scale(values[i]), r: 2.5}, lossSvg);
        }
        if (pts.length) el("polyline", {class: `chart-test-${kind}`, points: pts.join(" ")}, lossSvg);
      }
      const last = T.step.length - 1;
      label(w - right, top + 22, `held out: loss ${fmt(T.loss[last])}` +
        (Number.isFinite(T.accuracy[last]) ? `, accuracy ${fmt(T.accuracy[last])}` : ""), "end");
    }
    if (accPts.length) {
      el("polyline", {class: "chart-accuracy", points: accPts.join(" ")}, lossSvg);
      label(w - right + 4, top + 8, "acc 1", "start");
      label(w - right + 4, h - bottom, "0", "start");
    }
    label(left - 4, top + 8, fmt(hi), "end");
    label(left - 4, h - bottom, logScale ? fmt(lo) : fmt(Math.min(0, lo)), "end");
    label(left - 4, top + 22, logScale ? "(log)" : "", "end");
    label(left, h - 8, `step ${x0}`, "start");
    label(w - right, h - 8, `${x1}`, "end");
    for (const a of D.actions) {
      el("line", {class: "chart-action", x1: X(a.step), y1: top, x2: X(a.step), y2: h - bottom}, lossSvg);
      const t = label(X(a.step) + 3, top + 10, a.label || a.action, "start");
      t.setAttribute("class", "chart-action-label");
    }
    el("line", {class: "chart-now", id: "loss-now", x1: X(D.steps[k]), y1: top, x2: X(D.steps[k]), y2: h - bottom}, lossSvg);
    lossSvg.onclick = (ev) => {
      const box = lossSvg.getBoundingClientRect();
      const s = x0 + ((ev.clientX - box.left) * w / box.width - left) / (w - left - right) * (x1 - x0);
      let best = 0;
      for (let kk = 1; kk < S; kk++) if (Math.abs(D.steps[kk] - s) < Math.abs(D.steps[best] - s)) best = kk;
      go(best);
    };
    function label(x, y, text, anchor) {
      const t = el("text", {class: "chart-label", x, y, "text-anchor": anchor}, lossSvg);
      t.textContent = text;
      return t;
    }
  }

  // ---- decision surface --------------------------------------------------------

  const surface = D.surface;
  // the names of matplotlib's tab10 colours, which the class surface uses in order
  const COLOUR_NAMES = ["blue", "orange", "green", "red", "purple", "brown", "pink", "grey", "olive", "cyan"];
  const surfaceImages = surface ? surface.data.map(bytes) : [];
  // an image run's input tile: the batch mean, or one sample of the data set chosen beside the picture
  const samples = surface && surface.samples ? bytes(surface.samples) : null;
  if (samples) {
    $("surface-caption").insertAdjacentHTML("afterend", `<label id="sample-box">input: sample ` +
      `<input id="sample" type="number" min="0" max="${surface.sampleCount - 1}" step="1" placeholder="batch mean" ` +
      `aria-label="sample shown as the input"> <small>(empty: the batch mean; 0 to ${surface.sampleCount - 1}` +
      `${surface.sampleCount < surface.dataSize ? ` of the ${surface.dataSize} samples` : ""})</small></label>`);
    $("sample").addEventListener("input", drawSurface);
  }
  function shownSample() {
    if (!samples || $("sample").value === "") return null;
    const i = Number($("sample").value);
    return Number.isInteger(i) && i >= 0 && i < surface.sampleCount ? i : null;
  }

  function drawSurface() {
    if (!surface) return;
    $("surface-figure").hidden = false;
    let m = 0;
    for (let i = 0; i < surface.steps.length; i++) if (surface.steps[i] <= D.steps[k]) m = i;
    const n = surface.n, w = surface.w || n, img = surfaceImages[m];
    const canvas = $("surface"), ctx = canvas.getContext("2d");
    const small = document.createElement("canvas");
    small.width = w; small.height = n;
    const sctx = small.getContext("2d"), data = sctx.createImageData(w, n);
    for (let p = 0; p < n * w; p++) {
      if (surface.classes || surface.fields) {  // the colours themselves, three bytes a point
        data.data.set(img.subarray(3 * p, 3 * p + 3), 4 * p);
      } else {
        const hex = L.values[img[p]];
        data.data[4 * p] = parseInt(hex.slice(1, 3), 16);
        data.data[4 * p + 1] = parseInt(hex.slice(3, 5), 16);
        data.data[4 * p + 2] = parseInt(hex.slice(5, 7), 16);
      }
      data.data[4 * p + 3] = 255;
    }
    const one = shownSample();
    if (one !== null) {  // the input tile is the mosaic's top left
      const [rows, cols] = surface.image;
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
        const grey = samples[(one * rows + r) * cols + c];
        data.data.set([grey, grey, grey], 4 * (r * w + c));
      }
    }
    sctx.putImageData(data, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.imageSmoothingEnabled = !surface.fields;  // pixels of an image stay sharp
    ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
    if (surface.fields) {
      const [low, , high] = surface.norm;
      const input = one === null ? "batch mean" : `sample ${one} of the data set`;
      $("surface-caption").textContent = `At step ${surface.steps[m]}: the input (${input}, darker is larger), ` +
        `then the receptive field of each of the ${surface.fields} neurons of the first hidden layer: its ` +
        `incoming weights laid out as the image, blue ${fmt(low)}, white 0, red ${fmt(high)}.`;
      return;
    }
    const [ex0, ex1, ey0, ey1] = surface.extent;
    for (const [px, py, labelValue] of surface.points || []) {
      ctx.beginPath();
      ctx.arc((px - ex0) / (ex1 - ex0) * canvas.width, (ey1 - py) / (ey1 - ey0) * canvas.height, 3.2, 0, 2 * Math.PI);
      ctx.fillStyle = surface.classes ? surface.classes[labelValue] : labelValue ? L.positive : L.negative;
      ctx.fill();
      ctx.lineWidth = 1;
      ctx.strokeStyle = "#ffffff";
      ctx.stroke();
    }
    const across = `x0 across ${fmt(ex0)}…${fmt(ex1)}, x1 up ${fmt(ey0)}…${fmt(ey1)}.`;
    if (surface.classes) {
      $("surface-caption").textContent = `Decision surface at step ${surface.steps[m]}: the class picked over the ` +
        `inputs in its colour (${surface.names.map((name, i) => `${name} ${COLOUR_NAMES[i % 10]}`).join(", ")}), ` +
        `paler where the network is less sure; dots: the training data in their class colours. ${across}`;
      return;
    }
    const [low, middle, high] = surface.norm;
    $("surface-caption").textContent = `Decision surface at step ${surface.steps[m]}: ${surface.what} over the ` +
      `inputs, blue ${fmt(low)}, white ${fmt(middle)}, red ${fmt(high)}; dots: the training data by class. ` + across;
  }

  // ---- the sweep -------------------------------------------------------------

  const PHASES = ["forward", "forward", "backward", "backward", "update", "update"];

  function recordedSweep(step) {
    const s = D.sweeps[String(step)];
    const codes = bytes(s.codes), subjects = uints32(s.subjects), values = floats(s.values);
    return Array.from(codes, (code, i) => ({code, subj: subjects[i], v1: values[2 * i], v2: values[2 * i + 1]}));
  }

  // The sweep rebuilt from the snapshot: the order follows the engine's rule (a neuron
  // fires once it has heard from all it waits on, first ready first), the numbers are
  // the snapshot's means; backward messages are dL/dz of the target times the old weight.
  function derivedSweep(kk) {
    const events = [];
    const nodes = [], into = [], outOf = [];
    for (let i = 0; i < N; i++) { into.push([]); outOf.push([]); if (nodePresent(kk, i)) nodes.push(i); }
    for (let j = 0; j < E; j++) if (edgePresent(kk, j)) { outOf[D.edges[j][0]].push(j); into[D.edges[j][1]].push(j); }
    const oldWeight = (j) => edgeValue(kk, j, "weight") - edgeValue(kk, j, "delta");
    function run(waitsOn, starts, fire, sends, next) {
      const expected = {}, heard = {};
      for (const i of nodes) { expected[i] = waitsOn(i).length || (starts(i) ? 1 : 0); heard[i] = starts(i) ? 1 : 0; }
      const ready = nodes.filter((i) => heard[i] === expected[i]);
      while (ready.length) {
        const i = ready.shift();
        events.push(fire(i));
        for (const j of sends(i)) {
          events.push(next.message(j));
          const r = next.receiver(j);
          heard[r] += 1;
          if (heard[r] === expected[r]) ready.push(r);
        }
      }
    }
    run((i) => into[i], (i) => D.nodes[i].role === "input",
        (i) => ({code: 0, subj: i, v1: nodeValue(kk, i, "preactivation"), v2: nodeValue(kk, i, "activation")}),
        (i) => outOf[i],
        {message: (j) => ({code: 1, subj: j, v1: edgeValue(kk, j, "message"), v2: NaN}), receiver: (j) => D.edges[j][1]});
    run((i) => outOf[i], (i) => D.nodes[i].role === "output",
        (i) => ({code: 2, subj: i, v1: NaN, v2: nodeValue(kk, i, "gradient")}),
        (i) => into[i],
        {message: (j) => ({code: 3, subj: j, v1: nodeValue(kk, D.edges[j][1], "gradient") * oldWeight(j), v2: NaN}),
         receiver: (j) => D.edges[j][0]});
    for (let j = 0; j < E; j++) {
      if (edgePresent(kk, j) && !frozen(kk, j)) events.push({code: 4, subj: j, v1: oldWeight(j), v2: edgeValue(kk, j, "weight")});
    }
    for (const i of nodes) if (D.nodes[i].role !== "input") events.push({code: 5, subj: i, v1: NaN, v2: nodeValue(kk, i, "bias")});
    return events;
  }

  // Ticks: a neuron firing with the messages it sends; the weight updates into one
  // neuron; all bias updates.
  function ticks(events) {
    const out = [];
    let key = null;
    for (const e of events) {
      let next;
      if (e.code === 0 || e.code === 2) next = `fire${out.length}`;
      else if (e.code === 1 || e.code === 3) next = key;
      else if (e.code === 4) next = `w${D.edges[e.subj][1]}`;
      else next = "bias";
      if (!out.length || next !== key) { out.push([]); key = next; }
      out[out.length - 1].push(e);
    }
    return out;
  }

  const edgeName = (j) => `${D.nodes[D.edges[j][0]].name}→${D.nodes[D.edges[j][1]].name}`;
  function list(items, show) {
    const shown = items.slice(0, 6).map(show).join(", ");
    return items.length > 6 ? `${shown}, … ${items.length - 6} more` : shown;
  }
  function describe(tick) {
    const head = tick[0], rest = tick.slice(1);
    const name = (i) => D.nodes[i].name;
    switch (head.code) {
      case 0:
        return `forward · ${name(head.subj)} fires: z=${fmt(head.v1)}, a=${fmt(head.v2)}` +
          (rest.length ? ` → sends a·w to ${list(rest, (e) => `${name(D.edges[e.subj][1])} (${fmt(e.v1)})`)}` : "");
      case 2:
        return `backward · ${name(head.subj)} fires: dL/dz=${fmt(head.v2)}` +
          (rest.length ? ` → sends dL/dz·w back to ${list(rest, (e) => `${name(D.edges[e.subj][0])} (${fmt(e.v1)})`)}` : "");
      case 4:
        return `update · weights into ${name(D.edges[head.subj][1])}: ` +
          list(tick, (e) => `${edgeName(e.subj)} ${fmt(e.v1)}→${fmt(e.v2)}`);
      case 5:
        return `update · biases: ` + list(tick, (e) => `${name(e.subj)} →${fmt(e.v2)}`);
      default:
        return `${PHASES[head.code]} · ${list(tick, (e) => `${edgeName(e.subj)} ${fmt(e.v1)}`)}`;
    }
  }
  function exactTitle(tick) {
    return tick.map((e) => {
      const subject = e.code === 0 || e.code === 2 || e.code === 5 ? D.nodes[e.subj].name : edgeName(e.subj);
      return `${PHASES[e.code]} ${subject}: ${[e.v1, e.v2].filter((v) => !Number.isNaN(v)).map(pyRepr).join(" → ")}`;
    }).join("\n");
  }

  function startSweep() {
    stopPlay();
    stopSweep();
    const step = D.steps[k];
    if (step === 0) {
      $("sweep-panel").hidden = false;
      $("sweep-step").textContent = "0";
      $("sweep-source").textContent = "Step 0 is the state before training: it has no sweep.";
      $("sweep-log").innerHTML = "";
      return;
    }
    const recorded = Boolean(D.sweeps[String(step)]);
    sweep = {step, tick: 0, ticks: ticks(recorded ? recordedSweep(step) : derivedSweep(k)), timer: null, labels: []};
    $("sweep-panel").hidden = false;
    $("sweep-step").textContent = String(step);
    $("sweep-source").textContent = recorded
      ? "Recorded message by message in the trace: the order and the numbers (batch means) are the events'."
      : `Derived from this step's snapshot, because ${D.messages ? "this page has no room for its recorded messages" : "the trace keeps no messages"}: the order follows the ` +
        "engine's scheduling rule, backward messages are computed as dL/dz of the target × the old weight (≈).";
    $("sweep-log").innerHTML = "";
    svg.classList.add("sweeping");
    sweepTick();
  }

  function clearLit() {
    for (const node of svg.querySelectorAll(".lit")) node.classList.remove("lit");
    for (const t of sweep.labels) t.remove();
    sweep.labels = [];
  }

  function sweepTick() {
    if (!sweep) return;
    if (sweep.tick >= sweep.ticks.length) { finishSweep(); return; }
    const tick = sweep.ticks[sweep.tick];
    const phase = PHASES[tick[0].code];
    if (phase !== sweep.phase) {
      for (const node of svg.querySelectorAll(".done")) node.classList.remove("done");
      sweep.phase = phase;
      $("sweep-phase").textContent = phase;
    }
    clearLit();
    const quantity = phase === "forward" ? "activation" : "gradient";
    for (const e of tick) {
      if (e.code === 0 || e.code === 2 || e.code === 5) {
        nodeGroups[e.subj].classList.add("lit", "done");
        if (e.code !== 5) nodeGroups[e.subj].firstChild.setAttribute("fill", nodeColour(k, e.subj, quantity));
      } else {
        edgeLines[e.subj].classList.add("lit", "done");
        if (tick.length <= 24) sweep.labels.push(messageLabel(e));
      }
    }
    const li = document.createElement("li");
    li.textContent = describe(tick);
    li.title = exactTitle(tick);
    const log = $("sweep-log");
    for (const old of log.querySelectorAll(".current")) old.classList.remove("current");
    li.className = "current";
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
    sweep.tick += 1;
    sweep.timer = setTimeout(sweepTick, 700 / speed);
  }

  function messageLabel(e) {
    const [s, t] = D.edges[e.subj];
    const f = e.code === 1 ? 0.62 : 0.38;  // nearer the receiving end
    const text = el("text", {class: "message-label", x: xy[s][0] + f * (xy[t][0] - xy[s][0]),
                             y: xy[s][1] + f * (xy[t][1] - xy[s][1]) - 3}, labelLayer);
    text.textContent = fmt(e.code === 4 ? e.v2 : e.v1);
    return text;
  }

  function finishSweep() {
    const log = $("sweep-log");
    const li = document.createElement("li");
    li.textContent = `step ${sweep.step} done: ${sweep.ticks.length} ticks.`;
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
    stopSweep();
  }

  function stopSweep() {
    if (!sweep) return;
    clearTimeout(sweep.timer);
    clearLit();
    for (const node of svg.querySelectorAll(".done")) node.classList.remove("done");
    svg.classList.remove("sweeping");
    $("sweep-phase").textContent = "";
    sweep = null;
    drawNetwork();
  }

  // ---- playback --------------------------------------------------------------

  function go(next) {
    const clamped = Math.max(0, Math.min(S - 1, next));
    if (sweep) stopSweep();
    k = clamped;
    $("slider").value = String(k);
    drawNetwork();
    drawStatus();
    drawDetails();
    moveLossMarker();
    drawSurface();
  }

  function play() {
    if (k >= S - 1) go(0);
    $("play").textContent = "⏸ pause";
    playTimer = setInterval(() => {
      if (k >= S - 1) { stopPlay(); return; }
      go(k + 1);
    }, 250 / speed);
  }

  function stopPlay() {
    if (playTimer === null) return;
    clearInterval(playTimer);
    playTimer = null;
    $("play").textContent = "▶ play";
  }

  const slider = $("slider");
  slider.max = String(S - 1);
  slider.addEventListener("input", () => { stopPlay(); go(Number(slider.value)); });
  $("first").onclick = () => { stopPlay(); go(0); };
  $("last").onclick = () => { stopPlay(); go(S - 1); };
  $("back").onclick = () => { stopPlay(); go(k - 1); };
  $("forward").onclick = () => { stopPlay(); go(k + 1); };
  $("play").onclick = () => (playTimer === null ? play() : stopPlay());
  $("speed").onchange = (ev) => {
    speed = Number(ev.target.value);
    if (playTimer !== null) { stopPlay(); play(); }
  };
  $("mode").onchange = (ev) => { mode = ev.target.value; drawNetwork(); };
  $("sweep").onclick = startSweep;
  $("sweep-stop").onclick = stopSweep;
  document.addEventListener("keydown", (ev) => {
    const tag = ev.target.tagName;
    if (tag === "SELECT" || (tag === "INPUT" && ev.key.startsWith("Arrow"))) return;
    const moves = {ArrowLeft: () => go(k - 1), ArrowRight: () => go(k + 1), Home: () => go(0), End: () => go(S - 1)};
    if (moves[ev.key]) { stopPlay(); moves[ev.key](); ev.preventDefault(); }
    else if (ev.key === " " && tag !== "BUTTON") { $("play").click(); ev.preventDefault(); }
  });
  window.addEventListener("resize", drawLossChart);

  // ---- notes -----------------------------------------------------------------

  function notes() {
    const out = [];
    const all = D.recordedSteps;
    const every = D.recordEvery === 1 ? "every step" : `every ${D.recordEvery} steps`;
    const recorded = `recorded steps (a snapshot ${every} and the last) of the ${D.lastStep} steps run`;
    out.push(S === all
      ? `This page shows all ${all} ${recorded}.`
      : `This page shows ${S} of the ${all} ${recorded}: an even sample, with the first and the last` +
        `${D.actions.length ? " and those around each scripted action" : ""}, to keep the file small. ` +
        "The loss curve has every step.");
    if (!D.complete) out.push(`The run did not complete: the trace stops at step ${D.lastStep}.`);
    out.push("Numbers in the side panel and the header are exact: the trace's float64 values, printed as Python's repr. " +
      "Labels on the picture, the charts and the sweep log are rounded (hover a sweep line for exact values). " +
      "Activations, pre-activations, gradients and messages are batch means.");
    const swept = Object.keys(D.sweeps).map(Number);
    if (!swept.length) out.push(D.messages ? "The trace keeps every message, but they do not fit in this page: each sweep is derived from its step's snapshot."
      : "The trace keeps no messages, so each sweep is derived from its step's snapshot.");
    else if (swept.length === S - (D.steps[0] === 0 ? 1 : 0)) out.push("Every sweep on this page is the one recorded in the trace, message by message.");
    else out.push(`Sweeps recorded message by message are on this page for ${swept.length} steps (${summarise(swept)}); ` +
      "for the other steps the sweep is derived from the snapshot.");
    if (surface && surface.fields) out.push(`Receptive fields: kept at ${surface.steps.length} steps; between them the ` +
      "page shows the latest one at or before the current step.");
    else if (surface) out.push(`Decision surfaces: probed on a ${surface.n}×${surface.n} grid at ${surface.steps.length} steps; ` +
      "between them the page shows the latest one at or before the current step.");
    $("notes").innerHTML = out.map((text) => `<p>${text}</p>`).join("");
  }

  function summarise(steps) {
    return steps.length <= 8 ? steps.join(", ") : `${steps.slice(0, 4).join(", ")}, … ${steps[steps.length - 1]}`;
  }

  notes();
  drawLossChart();
  go(0);
  // for the console (and tests): the repr printer and the step shown
  window.simnetReplay = {pyRepr, step: () => D.steps[k]};
})();
