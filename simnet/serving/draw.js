"use strict";
// Drawing shared by the live and play pages: a network (neurons by depth, connections coloured by sign and
// as thick as their weight), a loss curve, and the decision surface of a two-input network.
const SVG = "http://www.w3.org/2000/svg";

function element(name, attributes, parent) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attributes)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

// neurons: [{name, role, activation, bias}], connections: [{source, target, weight, frozen}]
function depths(neurons, connections) {
  const depth = new Map(neurons.map(n => [n.name, 0]));
  const incoming = new Map(neurons.map(n => [n.name, []]));
  connections.forEach(c => incoming.get(c.target) && incoming.get(c.target).push(c.source));
  const seen = new Map();
  const visit = name => {
    if (seen.has(name)) return seen.get(name);
    seen.set(name, 0);
    const d = Math.max(0, ...incoming.get(name).map(s => visit(s) + 1));
    seen.set(name, d);
    return d;
  };
  neurons.forEach(n => depth.set(n.name, visit(n.name)));
  const deepest = Math.max(1, ...depth.values());
  neurons.forEach(n => { if (n.role === "output") depth.set(n.name, deepest); });
  return depth;
}

function topologyOf(network) {
  return network.neurons.map(n => n.name + ":" + n.activation).join(",") + "|" +
    network.connections.map(c => c.source + ">" + c.target).join(",");
}

function connectionLook(c, heaviest) {
  const w = c.weight === null ? 0 : c.weight;
  return {stroke: c.weight === null ? "#999" : w >= 0 ? "#c33" : "#36c",
          "stroke-width": 0.5 + 5 * Math.abs(w) / heaviest, "stroke-dasharray": c.frozen ? "4 3" : "none"};
}

function connectionTitle(c) { return `${c.source} → ${c.target}: ${c.weight}${c.frozen ? " (frozen)" : ""}`; }
function neuronTitle(n) { return `${n.name} (${n.role}, ${n.activation}) bias ${n.bias}`; }

// Draws `network` into `svg`; a network of the same neurons and connections as the one drawn last only
// has its colours, widths and titles changed (the page redraws a few times a second while training runs).
function drawNetwork(svg, network, handlers = {}) {
  if (!network) { svg.innerHTML = ""; return; }
  const heaviest = Math.max(1e-12, ...network.connections.map(c => Math.abs(c.weight || 0)));
  const topology = topologyOf(network);
  if (svg.dataset.topology === topology) {
    const lines = svg.querySelectorAll("line.connection"), neurons = svg.querySelectorAll("g.neuron");
    network.connections.forEach((c, i) => {
      for (const [k, v] of Object.entries(connectionLook(c, heaviest))) lines[i].setAttribute(k, v);
      lines[i].firstChild.textContent = connectionTitle(c);
      lines[i].simnet = c;
    });
    network.neurons.forEach((n, i) => {
      neurons[i].lastChild.textContent = neuronTitle(n);
      neurons[i].simnet = n;
    });
    return;
  }
  svg.innerHTML = "";
  svg.dataset.topology = topology;
  const width = +svg.getAttribute("width"), height = +svg.getAttribute("height");
  const depth = depths(network.neurons, network.connections);
  const deepest = Math.max(1, ...depth.values());
  const columns = new Map();
  network.neurons.forEach(n => {
    const d = depth.get(n.name);
    if (!columns.has(d)) columns.set(d, []);
    columns.get(d).push(n.name);
  });
  const at = new Map();
  columns.forEach((names, d) => names.forEach((name, i) => at.set(name, [
    40 + (width - 80) * d / deepest, 20 + (height - 40) * (i + 0.5) / names.length])));
  network.connections.forEach(c => {
    const [x1, y1] = at.get(c.source), [x2, y2] = at.get(c.target);
    const line = element("line", {x1, y1, x2, y2, class: "connection", "stroke-opacity": 0.75,
      "data-source": c.source, "data-target": c.target, ...connectionLook(c, heaviest)}, svg);
    element("title", {}, line).textContent = connectionTitle(c);
    line.simnet = c;
    if (handlers.connection) line.addEventListener("click", () => handlers.connection(line.simnet));
  });
  // a crowded column gets smaller neurons, labelled beside them rather than above
  const spacing = Math.min(...Array.from(columns.values(), names => (height - 40) / names.length));
  const r = Math.max(3, Math.min(11, 0.35 * spacing)), beside = spacing < 30;
  network.neurons.forEach(n => {
    const [x, y] = at.get(n.name);
    const g = element("g", {class: "neuron", "data-name": n.name}, svg);
    element("circle", {cx: x, cy: y, r, fill: n.role === "input" ? "#eee" : n.role === "output" ? "#fd9" : "#fff",
                       stroke: "#333"}, g);
    const label = element("text", beside ? {x: x + r + 2, y: y + 3, "text-anchor": "start", "font-size": 8}
                                         : {x, y: y - r - 3, "text-anchor": "middle"}, g);
    label.textContent = n.name;
    element("title", {}, g).textContent = neuronTitle(n);
    g.simnet = n;
    if (handlers.neuron) g.addEventListener("click", () => handlers.neuron(g.simnet));
  });
}

// points: [[step, loss, accuracy]]; marker: the step shown
function drawLoss(svg, points, marker) {
  svg.innerHTML = "";
  const width = +svg.getAttribute("width"), height = +svg.getAttribute("height");
  const finite = points.filter(p => p[1] !== null && isFinite(p[1]));
  if (finite.length < 1) return;
  const first = points[0][0], last = Math.max(first + 1, points[points.length - 1][0]);
  const losses = finite.map(p => p[1]);
  const low = Math.min(...losses), high = Math.max(low + 1e-12, ...losses);
  // a loss that falls by more than two orders of magnitude is drawn on a log scale, so its tail shows
  const log = low > 0 && high / low > 100;
  const scale = v => (log ? Math.log(v) : v), bottom = scale(low), top = Math.max(bottom + 1e-12, scale(high));
  const x = s => 30 + (width - 40) * (s - first) / (last - first);
  const y = v => 10 + (height - 30) * (1 - (scale(v) - bottom) / (top - bottom));
  element("polyline", {points: finite.map(p => `${x(p[0])},${y(p[1])}`).join(" "), fill: "none",
                       stroke: "#222", "stroke-width": 1.5, id: "loss-line"}, svg);
  const accuracy = points.filter(p => p[2] !== null && isFinite(p[2]));
  if (accuracy.length) {
    element("polyline", {points: accuracy.map(p => `${x(p[0])},${10 + (height - 30) * (1 - p[2])}`).join(" "),
                         fill: "none", stroke: "#0a6", "stroke-dasharray": "3 2"}, svg);
  }
  if (marker !== undefined) element("line", {x1: x(marker), x2: x(marker), y1: 5, y2: height - 18, stroke: "#c22"}, svg);
  element("text", {x: 30, y: height - 4}, svg).textContent = `step ${first}`;
  element("text", {x: width - 10, y: height - 4, "text-anchor": "end"}, svg).textContent = `step ${last}`;
  element("text", {x: 2, y: 12}, svg).textContent = high.toPrecision(3) + (log ? " (log scale)" : "");
  element("text", {x: 2, y: height - 20}, svg).textContent = low.toPrecision(3);
}

const ACTIVATE = {
  relu: z => Math.max(z, 0), leaky_relu: z => (z > 0 ? z : 0.01 * z), linear: z => z, tanh: Math.tanh,
  sigmoid: z => 0.5 * (1 + Math.tanh(0.5 * z)),
};

// The network's first output over a grid around the points, blue below the middle, red above; the points
// on top.  points: [[x, y, label]]
function drawSurface(canvas, network, points) {
  const context = canvas.getContext("2d");
  const n = 48, size = canvas.width;
  const inputs = network.neurons.filter(v => v.role === "input").map(v => v.name);
  const output = network.neurons.find(v => v.role === "output");
  if (inputs.length !== 2 || !output || !points) return;
  // the network as arrays, in firing order: each neuron's bias, activation and incoming (source, weight)
  const order = Array.from(depths(network.neurons, network.connections).entries()).sort((a, b) => a[1] - b[1])
    .map(([name]) => name);
  const slot = new Map(order.map((name, i) => [name, i]));
  const byName = new Map(network.neurons.map(v => [v.name, v]));
  const layers = order.map(name => byName.get(name)).filter(v => v.role !== "input").map(v => ({
    at: slot.get(v.name), bias: v.bias || 0, f: ACTIVATE[v.activation] || (t => t),
    sources: network.connections.filter(c => c.target === v.name).map(c => [slot.get(c.source), c.weight || 0])}));
  const first = slot.get(inputs[0]), second = slot.get(inputs[1]), out = slot.get(output.name);
  const xs = points.map(p => p[0]), ys = points.map(p => p[1]);
  const x0 = Math.min(...xs) - 0.5, x1 = Math.max(...xs) + 0.5, y0 = Math.min(...ys) - 0.5, y1 = Math.max(...ys) + 0.5;
  const values = [], value = new Float64Array(order.length);
  for (let j = 0; j < n; j++) for (let i = 0; i < n; i++) {
    value[first] = x0 + (x1 - x0) * (i + 0.5) / n;
    value[second] = y1 - (y1 - y0) * (j + 0.5) / n;
    for (const neuron of layers) {
      let z = neuron.bias;
      for (const [source, weight] of neuron.sources) z += weight * value[source];
      value[neuron.at] = neuron.f(z);
    }
    values.push(value[out]);
  }
  const middle = output.activation === "sigmoid" ? 0.5 : 0;
  const spread = Math.max(1e-9, ...values.map(v => Math.abs(v - middle)));
  const cell = size / n;
  values.forEach((v, k) => {
    const t = Math.max(-1, Math.min(1, (v - middle) / spread));
    const r = t > 0 ? 255 : Math.round(255 * (1 + t)), b = t < 0 ? 255 : Math.round(255 * (1 - t));
    context.fillStyle = `rgb(${r},${Math.round(255 * (1 - Math.abs(t)))},${b})`;
    context.fillRect((k % n) * cell, Math.floor(k / n) * cell, cell + 1, cell + 1);
  });
  points.forEach(([px, py, label]) => {
    context.beginPath();
    context.arc((px - x0) / (x1 - x0) * size, (y1 - py) / (y1 - y0) * size, 3, 0, 2 * Math.PI);
    context.fillStyle = label > 0 ? "#900" : "#039";
    context.fill();
    context.strokeStyle = "#fff";
    context.stroke();
  });
}
