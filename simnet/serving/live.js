"use strict";
// Follows a run: asks for the steps after the last it has every half second, grows the slider and the loss
// curve, and says when the run ends or its recording process dies.
const config = JSON.parse(document.getElementById("config").textContent);
const points = [];  // [step, loss, accuracy]
const networks = new Map();  // snapshot step -> network
let after = -1, status = "", timer = null;
document.getElementById("name").textContent = config.name;
const slider = document.getElementById("slider");
const follow = document.getElementById("follow");
const runPath = config.name.split("/").map(encodeURIComponent).join("/");  // the run's name, as in a URL
const base = "/api/runs/" + runPath;

function networkAt(step) {
  let best = null;
  for (const s of networks.keys()) if (s <= step && (best === null || s > best)) best = s;
  if (best === null) return null;
  const [neurons, connections] = [networks.get(best).neurons, networks.get(best).connections];
  return {neurons: neurons.map(([name, role, activation, bias]) => ({name, role, activation, bias})),
          connections: connections.map(([source, target, weight, frozen]) => ({source, target, weight, frozen}))};
}

function show() {
  const k = +slider.value;
  const point = points[k];
  const step = point ? point[0] : 0;
  document.getElementById("shown").textContent = point ? step : "";
  drawNetwork(document.getElementById("network"), networkAt(step));
  drawLoss(document.getElementById("loss-chart"), points, point ? step : undefined);
}

function setStatus(value, heartbeat) {
  status = value;
  const banner = document.getElementById("banner");
  banner.className = "status " + value;
  // the heartbeat: how long ago the run's writer last said, in the trace, that it was alive
  const ago = typeof heartbeat === "number" ? `${heartbeat.toFixed(1)} s ago` : "";
  banner.textContent = value === "running" ? "running" + (ago && ` · heartbeat ${ago}`)
    : value === "incomplete" ? "incomplete: the run's process died" + (ago && ` · last heartbeat ${ago}`) : value;
  const ended = value && value !== "running";
  if (ended && value !== "incomplete") {
    const link = document.getElementById("replay");
    link.href = "/runs/" + runPath + "/";
    link.hidden = false;
  }
}

async function poll() {
  try {
    const answer = await (await fetch(`${base}/steps?after=${after}`)).json();
    for (const s of answer.steps || []) points.push([s.step, s.loss, s.accuracy]);
    for (const [s, network] of Object.entries(answer.networks || {})) networks.set(+s, network);
    if (answer.steps && answer.steps.length) {
      after = answer.steps[answer.steps.length - 1].step;
      const last = points[points.length - 1];
      document.getElementById("step-count").textContent = last[0];
      document.getElementById("loss").textContent = last[1] === null ? "" : last[1].toPrecision(4);
      document.getElementById("accuracy").textContent = last[2] === null ? "" : (100 * last[2]).toFixed(1) + "%";
      slider.max = points.length - 1;
      if (follow.checked) slider.value = points.length - 1;
      show();
    } else if (networks.size && !points.length) show();
    setStatus(answer.status, answer.heartbeat);
    if (answer.more) { poll(); return; }
  } catch (e) { /* the server is gone for a moment: try again */ }
  if (status === "running" || status === "") timer = setTimeout(poll, 500);
  else if (status) setTimeout(poll, 2000);  // an ended run may still be finishing its summary
}
slider.addEventListener("input", () => { follow.checked = +slider.value === points.length - 1; show(); });
poll();
