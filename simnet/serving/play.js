"use strict";
// A live session: the buttons post to /api/session/*, and a drawing loop (a few frames a second, whatever
// the training rate) shows the latest network, loss curve and decision surface.
const config = JSON.parse(document.getElementById("config").textContent);
document.getElementById("name").textContent = config.name + " (live)";
const points = [];  // [step, loss, accuracy]
let data = null, selected = null, frames = 0;
const $ = id => document.getElementById(id);

function say(text, error) {
  $("message").textContent = text;
  $("message").className = error ? "error" : "";
}

async function post(path, body) {
  const response = await fetch("/api/session/" + path, {method: "POST", headers: {"content-type": "application/json"},
                                                       body: JSON.stringify(body || {})});
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error);
  return answer;
}

async function act(entry) {
  try {
    const done = await post("action", entry);
    say(`${done.label} (before step ${done.step})`);
    return true;
  } catch (e) { say(e.message, true); return false; }
}

function names(text) { return text.split(",").map(s => s.trim()).filter(Boolean); }
function speed() { return $("speed").value ? +$("speed").value : null; }

$("play").onclick = () => post("run", {steps: null, speed: speed()}).catch(e => say(e.message, true));
$("pause").onclick = () => post("pause").catch(e => say(e.message, true));
for (const n of [1, 10, 100]) $("step" + n).onclick = () => post("run", {steps: n, speed: speed()}).catch(e => say(e.message, true));
$("set-lr").onclick = () => act({action: "set_learning_rate", value: +$("lr-value").value});
$("add-neuron").onclick = () => act({action: "add_neuron", name: $("add-name").value.trim(),
  activation: $("add-activation").value, connect_from: names($("add-from").value), connect_to: names($("add-to").value)});
$("connect").onclick = () => act({action: "connect", from: $("connect-from").value.trim(), to: $("connect-to").value.trim()});
$("perturb").onclick = () => act({action: "perturb", noise: +$("noise").value});
$("set-selected").onclick = () => {
  if (!selected) return say("click a neuron or a connection first", true);
  const value = +$("selected-value").value;
  act(selected.source ? {action: "set_weight", from: selected.source, to: selected.target, weight: value}
                      : {action: "set_bias", name: selected.name, bias: value});
};
$("remove-neuron").onclick = async () => {
  if (!selected || selected.source) return say("click a neuron first", true);
  if (await act({action: "remove_neuron", name: selected.name})) {
    selected = null;
    $("selected").textContent = "click a neuron or connection";
  }
};
$("freeze").onclick = () => selected && selected.source ?
  act({action: selected.frozen ? "unfreeze" : "freeze", from: selected.source, to: selected.target}) : say("click a connection first", true);
$("disconnect").onclick = () => selected && selected.source ?
  act({action: "disconnect", from: selected.source, to: selected.target}) : say("click a connection first", true);
$("save").onclick = async () => {
  try { say("saved as " + (await post("save")).path); } catch (e) { say(e.message, true); }
};

function select(thing) {
  selected = thing;
  $("selected").textContent = thing.source ? `${thing.source} → ${thing.target}` : thing.name;
  $("selected-value").value = thing.source ? thing.weight : thing.bias;
}

async function refresh() {
  try {
    const after = points.length ? points[points.length - 1][0] : 0;
    const {state, network, history} = await (await fetch("/api/session/frame?after=" + after)).json();
    $("step-count").textContent = state.step;
    $("loss").textContent = state.loss === null ? "" : state.loss.toPrecision(4);
    $("accuracy").textContent = state.accuracy === null ? "" : (100 * state.accuracy).toFixed(1) + "%";
    $("banner").textContent = state.ended ? "ended: " + state.ended : state.running ? "training" : "paused";
    $("banner").className = "status " + (state.running ? "running" : "");
    for (const p of history) points.push(p);
    if (network) {
      $("lr").textContent = network.learning_rate;
      drawNetwork($("network"), network, {neuron: select, connection: select});
      if (data && data.points) drawSurface($("surface"), network, data.points);
    }
    drawLoss($("loss-chart"), points, points.length ? points[points.length - 1][0] : undefined);
    frames += 1;
  } catch (e) { /* the server went away for a moment */ }
  setTimeout(refresh, 200);  // about 4 frames a second: enough to watch, little taken from training
}

(async () => {
  data = await (await fetch("/api/session/data")).json();
  if (!data.points) $("surface-panel").hidden = true;
  let counted = 0;
  setInterval(() => { $("drawn").textContent = `${frames - counted} frames/s`; counted = frames; window.simnetFrames = frames; }, 1000);
  refresh();
})();
