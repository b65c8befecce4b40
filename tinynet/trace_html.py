"""A Trace as one self-contained HTML page: the graph drawn in inline SVG, and a step-through of backward that explains.

Nothing is fetched: the trace travels as JSON inside the page, the drawing and the stepping are a short script
below. The layout is layered: one column per distance from the loss, so a deep network scrolls sideways; each node
shows its shape. Left/right arrow keys (or the buttons) move through the steps; the current tensor is outlined in
red, the parents it sends gradients to in orange, and a tensor whose gradient is known is filled by that gradient's
norm (log scale, legend in the header). Each step's panel shows the op's VJP as formulas (what backward sends each
input, g = grad_out), the gradients themselves, image-shaped tensors' values (feature maps, images) and gradients
also as heatmaps, and, where a tensor is an input several times, its gradient as the chain rule's sum. The header
shows how many bytes of what the forward saved the steps still to come need; each step's panel, what its node saved.

Predict mode (the checkbox): before a step's gradients are shown, the page asks which formula the op sends its
first input (a choice among four), or, for an op without formulas, the shape of that gradient; it says right or
wrong, then reveals the step. Ticking the box again starts the questions over.
"""
import html
import json

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #222; }
header { padding: 0.6em 1em; border-bottom: 1px solid #ccc; display: flex; gap: 0.6em; align-items: center;
         flex-wrap: wrap; }
header h1 { font-size: 1.1em; margin: 0 1em 0 0; }
button { font-size: 1em; padding: 0.2em 0.8em; }
main { display: flex; height: calc(100vh - 4.2em); }
#graph { flex: 3; overflow: auto; border-right: 1px solid #ccc; }
#panel { flex: 2; overflow: auto; padding: 0.6em 1em; font-size: 0.9em; }
#panel table { border-collapse: collapse; } #panel td, #panel th { border: 1px solid #ddd; padding: 0.15em 0.4em; }
#panel code, .formula { background: #f4f4f4; font-family: ui-monospace, monospace; }
.node rect { fill: #fff; stroke: #6a8ccf; stroke-width: 1.2; rx: 6; }
.node.leaf rect { stroke: #4f9a4f; } .node.const rect { fill: #f4f4f4; stroke: #bbb; }
.node.receiving rect { stroke: #e08a00; stroke-width: 3; } .node.current rect { stroke: #d00; stroke-width: 4; }
.node text { font-size: 12px; text-anchor: middle; dominant-baseline: middle; pointer-events: none; }
.node text.shape { font-size: 10px; }
.edge { fill: none; stroke: #999; stroke-width: 1.2; } .edge.active { stroke: #e08a00; stroke-width: 3; }
.heatmaps { display: flex; gap: 0.6em; flex-wrap: wrap; } .heatmaps figure { margin: 0; font-size: 0.8em; }
.heatmaps canvas { image-rendering: pixelated; border: 1px solid #ccc; }
#question { border: 2px solid #6a8ccf; padding: 0.4em 0.8em; border-radius: 6px; }
#question .choice { display: block; margin: 0.3em 0; text-align: left; font-family: ui-monospace, monospace; }
#feedback.right { color: #1a7a1a; } #feedback.wrong { color: #b00; } #feedback { font-weight: bold; }
"""

BODY = """
<header><h1>__TITLE__</h1>
<button id="first">|&lt;</button><button id="previous">&lt; previous</button>
<button id="next">next &gt;</button><button id="last">&gt;|</button><span id="counter"></span>
<label><input type="checkbox" id="predict"> predict</label>
<span id="legend"></span><span id="memory"></span></header>
<main><div id="graph"></div><div id="panel"></div></main>
"""

# The graph: layout, shapes on the nodes, fill by the gradient's norm and its legend.
GRAPH_SCRIPT = """
"use strict";
const trace = JSON.parse(document.getElementById("trace-data").textContent);
const ids = Object.keys(trace.nodes).map(Number).sort((a, b) => a - b);
const W = 150, H = 40, GX = 40, GY = 14;
// Columns: each tensor as far right as its first consumer allows, so leaves sit next to their use.
const depth = {}, rows = {}, pos = {}, children = {};
for (const id of ids) {
  const parents = trace.nodes[id].parents;
  depth[id] = parents.length ? 1 + Math.max(...parents.map(p => depth[p])) : 0;
  for (const p of parents) (children[p] = children[p] || []).push(id);
}
for (const id of [...ids].reverse()) if (children[id]) depth[id] = Math.min(...children[id].map(c => depth[c])) - 1;
for (const id of ids) {
  rows[depth[id]] = (rows[depth[id]] || 0) + 1;
  pos[id] = { x: 10 + depth[id] * (W + GX), y: 10 + (rows[depth[id]] - 1) * (H + GY) };
}
const width = 20 + (Math.max(...ids.map(i => depth[i])) + 1) * (W + GX);
const height = 20 + Math.max(...Object.values(rows)) * (H + GY);
const bytes = n => {
  for (const [unit, size] of [["GB", 1e9], ["MB", 1e6], ["kB", 1e3]]) {
    if (n >= size) return `${Number((n / size).toPrecision(3))} ${unit}`;
  }
  return `${n} B`;
};
const esc = s => String(s).replace(/[&<>"]/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
const shapeText = shape => `(${shape.join(", ")})`;
let svg = `<svg width="${width}" height="${height}">`;
for (const id of ids) {
  const drawn = {};  // a tensor used twice by one op (a + a) gets two visibly separate edges
  for (const p of trace.nodes[id].parents) {
    const bow = 14 * (drawn[p] = (drawn[p] || 0) + 1) - 14;
    const a = pos[p], b = pos[id], mx = (a.x + W + b.x) / 2;
    svg += `<path class="edge" data-from="${p}" data-to="${id}" d="M${a.x + W},${a.y + H / 2} ` +
           `C${mx},${a.y + H / 2 + bow} ${mx},${b.y + H / 2 + bow} ${b.x},${b.y + H / 2}"/>`;
  }
}
for (const id of ids) {
  const n = trace.nodes[id], kind = n.leaf ? (n.requires_grad ? "leaf" : "const") : "op";
  svg += `<g class="node ${kind}" id="node-${id}" data-id="${id}"><title>t${id} ${esc(n.label)} ` +
         `${shapeText(n.shape)} ${esc(n.call_site)}` +
         `${n.saved_bytes ? ", saved " + bytes(n.saved_bytes) : ""}</title>` +
         `<rect x="${pos[id].x}" y="${pos[id].y}" width="${W}" height="${H}"/>` +
         `<text x="${pos[id].x + W / 2}" y="${pos[id].y + 13}">t${id} ${esc(n.label).slice(0, 18)}</text>` +
         `<text class="shape" x="${pos[id].x + W / 2}" y="${pos[id].y + 29}">` +
         `${esc(shapeText(n.shape)).slice(0, 24)}</text></g>`;
}
document.getElementById("graph").innerHTML = svg + "</svg>";

// Fill by log10 of the norm of the tensor's gradient, once backward has reached it.
const RAMP = ["#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b"], ZERO = "#ffffff", NOT_FINITE = "#e7298a";
const logs = trace.steps.map(s => Number(s.grad_out.norm)).filter(n => n > 0 && isFinite(n)).map(Math.log10);
const lowest = logs.length ? Math.floor(Math.min(...logs)) : 0;
const highest = logs.length ? Math.max(Math.ceil(Math.max(...logs)), lowest + 1) : 1;
function rampColour(t) {
  const x = Math.min(Math.max(t, 0), 1) * (RAMP.length - 1), i = Math.min(Math.floor(x), RAMP.length - 2);
  const rgb = c => [1, 3, 5].map(k => parseInt(c.slice(k, k + 2), 16));
  const [a, b] = [rgb(RAMP[i]), rgb(RAMP[i + 1])];
  return "#" + a.map((v, k) => Math.round(v + (b[k] - v) * (x - i)).toString(16).padStart(2, "0")).join("");
}
function normColour(norm) {
  const n = Number(norm);
  if (!isFinite(n)) return NOT_FINITE;
  return n === 0 ? ZERO : rampColour((Math.log10(n) - lowest) / (highest - lowest));
}
const gradientOf = {};  // tensor -> its step
for (const s of trace.steps) gradientOf[s.tensor] = s;
function paint(id, reached) {
  const g = document.getElementById("node-" + id), rect = g.querySelector("rect");
  const colour = reached ? normColour(gradientOf[id].grad_out.norm) : "";
  rect.style.fill = colour;
  g.dataset.fill = colour;
  const dark = colour && colour !== ZERO && colour !== NOT_FINITE &&
               (Math.log10(Number(gradientOf[id].grad_out.norm)) - lowest) / (highest - lowest) > 0.6;
  g.querySelectorAll("text").forEach(t => { t.style.fill = dark ? "#fff" : ""; });
}
(function legend() {
  const stops = RAMP.map((c, i) => `<stop offset="${i / (RAMP.length - 1)}" stop-color="${c}"/>`).join("");
  const label = e => `1e${e}`;
  document.getElementById("legend").innerHTML = `<svg width="300" height="30" id="legend-bar">` +
    `<title>fill: the norm of the tensor's gradient, log scale</title><defs><linearGradient id="ramp">${stops}` +
    `</linearGradient></defs><text x="0" y="12" font-size="10">|grad|</text>` +
    `<rect x="36" y="2" width="150" height="12" fill="url(#ramp)" stroke="#999"/>` +
    `<text x="36" y="26" font-size="10">${label(lowest)}</text>` +
    `<text x="186" y="26" font-size="10" text-anchor="end">${label(highest)}</text>` +
    `<rect x="196" y="2" width="12" height="12" fill="${ZERO}" stroke="#999"/>` +
    `<text x="211" y="12" font-size="10">0</text>` +
    `<rect x="226" y="2" width="12" height="12" fill="${NOT_FINITE}" stroke="#999"/>` +
    `<text x="241" y="12" font-size="10">nan/inf</text></svg>`;
})();
"""

# The panel: values, heatmaps, formulas, the chain-rule sum; predict mode's questions.
PANEL_SCRIPT = """
function show(summary) {
  const values = summary.values.map(v => Number(v).toPrecision(4)).join(", ");
  const shape = `shape ${shapeText(summary.shape)}`;
  return summary.whole ? `<code>[${values}]</code> <small>${shape}</small>`
    : `${shape}, norm ${Number(summary.norm).toPrecision(4)}, first values <code>[${values}, ...]</code>`;
}
function heatmaps(map) {  // red positive, blue negative, white 0; full colour = +-scale; gray: not finite
  if (!map) return "";
  const zoom = Math.max(2, Math.floor(96 / Math.max(map.width, map.height)));  // the longer side about 96 px
  const figures = map.planes.map((name, k) => `<figure><canvas data-plane="${k}" width="${map.width}" ` +
    `height="${map.height}" style="width:${map.width * zoom}px"></canvas>` +
    `<figcaption>${esc(name)}</figcaption></figure>`).join("");
  return `<div class="heatmaps" data-heatmap="${esc(JSON.stringify(map))}">${figures}</div>` +
    `<p><small>heatmap: means over ${map.factor}x${map.factor} blocks; red +, blue -, ` +
    `full colour = ${Number(map.scale).toPrecision(3)}</small></p>`;
}
function drawHeatmaps() {
  for (const holder of document.querySelectorAll("#panel .heatmaps")) {
    const map = JSON.parse(holder.dataset.heatmap), levels = atob(map.data), plane = map.width * map.height;
    for (const canvas of holder.querySelectorAll("canvas")) {
      const context = canvas.getContext("2d"), image = context.createImageData(map.width, map.height);
      for (let i = 0; i < plane; i++) {
        const byte = levels.charCodeAt(Number(canvas.dataset.plane) * plane + i), v = byte > 127 ? byte - 256 : byte;
        const t = Math.abs(v) / 127, colour = v === -128 ? [136, 136, 136]
          : v >= 0 ? [255, 255 * (1 - t), 255 * (1 - t)] : [255 * (1 - t), 255 * (1 - t), 255];
        image.data.set([...colour, 255], 4 * i);
      }
      context.putImageData(image, 0, 0);
    }
  }
}
function leafTable() {
  const rows = trace.steps.filter(s => s.leaf_grad).map(s =>
    `<tr><td>t${s.tensor} ${esc(trace.nodes[s.tensor].label)}</td><td>${show(s.leaf_grad)}</td></tr>`);
  return `<h2>Done: the leaf gradients</h2><p>These are the <code>.grad</code> that backward left.</p>` +
         `<table id="leaf-grads"><tr><th>leaf</th><th>.grad</th></tr>${rows.join("")}</table>`;
}
function countedSteps(indices) {
  const counts = {};
  for (const i of indices) counts[i] = (counts[i] || 0) + 1;
  return Object.entries(counts).map(([i, n]) => `step ${i}` + (n > 1 ? ` (${n} times)` : "")).join(", ");
}
function formulaFor(id, input) {  // what the op of tensor id sends its input number `input`
  const formulas = trace.nodes[id].formulas;
  return formulas && input < formulas.length ? { name: formulas[input][0], formula: formulas[input][1] } : null;
}
function chainRule(step) {  // the terms of an accumulated gradient: what each child sent
  const terms = [];
  for (const index of [...new Set(step.contributions)]) {
    const child = trace.steps[index - 1];
    for (const sent of child.to_parents.filter(s => s.parent === step.tensor)) {
      const named = formulaFor(child.tensor, sent.input);
      terms.push({ text: `g from t${child.tensor} (${esc(trace.nodes[child.tensor].op)}` +
                         `${named ? ", input " + esc(named.name) : ""})`, sent, index });
    }
  }
  return `<div id="chain-rule"><p><b>Accumulation:</b> t${step.tensor} is an input ${terms.length} times, so ` +
    `its gradient is the sum of ${step.contributions.length} contributions, sent at ` +
    `${countedSteps(step.contributions)}. ` +
    `The chain rule:</p><p class="formula">grad t${step.tensor} = ${terms.map(t => t.text).join(" + ")}</p><ul>` +
    terms.map(t => `<li>${t.text}, at step ${t.index}: ${show(t.sent.grad)}</li>`).join("") + `</ul></div>`;
}
function stepHeader(step) {
  const n = trace.nodes[step.tensor];
  let out = `<h2>Step ${step.index}: t${step.tensor} ${esc(n.label)}</h2>`;
  const typed = id => `t${id} ${shapeText(trace.nodes[id].shape)} ${trace.nodes[id].dtype}`;
  out += n.op ? `<p>${typed(step.tensor)} = ${esc(n.op)}(${n.parents.map(typed).join(", ")})</p>`
              : `<p>a leaf: ${typed(step.tensor)}</p>`;
  if (n.call_site) out += `<p>made at <code>${esc(n.call_site)}</code></p>`;
  if (step.contributions.length > 1) out += chainRule(step);
  if (n.heatmap) out += `<p>value of t${step.tensor} (forward):</p>` + heatmaps(n.heatmap);
  out += `<p>grad_out = g (d loss / d t${step.tensor}): ${show(step.grad_out)}</p>` + heatmaps(step.heatmap);
  const saved = Object.entries(n.saved);
  if (saved.length) out += `<p>saved by the forward for backward (<span class="saved-bytes">` +
      `${bytes(n.saved_bytes)}</span>):</p><ul>` +
      saved.map(([k, v]) => `<li>${esc(k)}: ${show(v)}</li>`).join("") + `</ul>`;
  return out;
}
function sentTable(step) {
  const n = trace.nodes[step.tensor];
  if (!step.to_parents.length) return step.leaf_grad ? `<p>.grad of this leaf is now ${show(step.leaf_grad)}</p>` : "";
  const formula = s => {
    const named = formulaFor(step.tensor, s.input);
    return named ? `${esc(named.name)}: ${esc(named.formula)}` : `see ${esc(n.op)}.backward`;
  };
  return `<p>${esc(n.op)}'s VJP: what its backward sends each parent (g = grad_out):</p><table id="sent">` +
    `<tr><th>parent</th><th>formula</th><th>gradient</th><th>un-broadcast</th></tr>` +
    step.to_parents.map(s => `<tr><td>t${s.parent}</td><td class="formula">${formula(s)}</td>` +
      `<td>${show(s.grad)}</td><td>${s.summed_axes.length ? "summed over axes (" + s.summed_axes.join(", ") +
      ") of " + shapeText(s.from_shape) : ""}</td></tr>`).join("") + `</table>`;
}

// Predict mode: one question per step that sends gradients, answered once.
const answers = {};
function shuffled(items, seed) {  // the same order for the same step on every visit
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    seed = (seed * 48271) % 2147483647;  // MINSTD: exact in doubles
    const j = seed % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
function questionOf(step) {
  const sent = step.to_parents[0], named = formulaFor(step.tensor, sent.input), op = trace.nodes[step.tensor].op;
  if (!named) return { kind: "shape", expected: sent.grad.shape.join(", "),
    text: `What shape is the gradient ${esc(op)} sends to t${sent.parent}? Type it like <code>64, 16</code> ` +
          `(nothing for a scalar).` };
  const own = trace.nodes[step.tensor].formulas.map(f => f[1]).filter(f => f !== named.formula);
  const others = shuffled(trace.formula_catalogue.filter(f => f !== named.formula && !own.includes(f)), step.index);
  const wrong = [...new Set([...own, ...others])].slice(0, 3);
  return { kind: "formula", expected: named.formula, choices: shuffled([named.formula, ...wrong], step.index + 7),
    text: `Which gradient does ${esc(op)} send to its input ${esc(named.name)} (t${sent.parent})? g is grad_out.` };
}
function questionPanel(step) {
  const q = questionOf(step);
  const answer = q.kind === "formula"
    ? q.choices.map(c => `<button class="choice" data-answer="${esc(c)}">${esc(c)}</button>`).join("")
    : `<input id="shape-answer" size="12"> <button id="check">check</button>`;
  return `<div id="question"><p><b>Predict:</b> ${q.text}</p>${answer}</div>`;
}
function answer(step, given) {
  const q = questionOf(step), normal = s => s.replace(/[()\\s]/g, "").replace(/,$/, "");
  const right = q.kind === "formula" ? given === q.expected : normal(given) === normal(q.expected);
  answers[step.index] = { right, given, expected: q.kind === "formula" ? q.expected : `(${q.expected})` };
  render();
}
function feedback(step) {
  const a = answers[step.index];
  if (!a) return "";
  return a.right ? `<p id="feedback" class="right">Right: ${esc(a.expected)}</p>`
    : `<p id="feedback" class="wrong">Not quite: you answered ${esc(a.given || "nothing")}; ` +
      `the answer is ${esc(a.expected)}.</p>`;
}
function describeStep(step) {
  const asking = document.getElementById("predict").checked && step.to_parents.length && !answers[step.index];
  return stepHeader(step) + (asking ? questionPanel(step) : feedback(step) + sentTable(step));
}
function wireQuestion(step) {
  document.querySelectorAll("#question .choice").forEach(b => { b.onclick = () => answer(step, b.dataset.answer); });
  const check = document.getElementById("check"), typed = document.getElementById("shape-answer");
  if (check) check.onclick = () => answer(step, typed.value);
  if (typed) typed.onkeydown = e => { if (e.key === "Enter") answer(step, typed.value); };
}
"""

STEPPER_SCRIPT = """
let current = 0;
const last = trace.steps.length + 1;
function render() {
  document.querySelectorAll(".node").forEach(g => g.classList.remove("current", "receiving"));
  document.querySelectorAll(".edge").forEach(e => e.classList.remove("active"));
  trace.steps.forEach((s, k) => paint(s.tensor, k < current));
  const panel = document.getElementById("panel");
  if (current === 0) {
    panel.innerHTML = `<h2>The forward graph</h2><p>${ids.length} tensors, ${trace.steps.length} backward ` +
      `steps. Press <b>next</b> (or the right arrow key) to run backward one tensor at a time, ` +
      `in reverse topological order. Each tensor is filled by the norm of its gradient once backward reaches ` +
      `it (legend above). Tick <b>predict</b> to guess each step's gradient before it is shown (ticking it again ` +
      `starts over).</p>`;
  } else if (current === last) {
    panel.innerHTML = leafTable();
  } else {
    const step = trace.steps[current - 1], node = document.getElementById("node-" + step.tensor);
    node.classList.add("current");
    for (const sent of step.to_parents) {
      document.getElementById("node-" + sent.parent).classList.add("receiving");
      document.querySelectorAll(`.edge[data-from="${sent.parent}"][data-to="${step.tensor}"]`)
        .forEach(e => e.classList.add("active"));
    }
    node.scrollIntoView({ block: "nearest", inline: "center" });
    panel.innerHTML = describeStep(step);
    drawHeatmaps();
    wireQuestion(step);
  }
  document.getElementById("counter").textContent = `step ${current} of ${last}`;
  const done = Math.min(current, trace.steps.length);
  const needed = done === 0 ? trace.saved_bytes : trace.steps[done - 1].saved_bytes_needed;
  document.getElementById("memory").textContent =
    `saved for backward: ${bytes(needed)} of ${bytes(trace.saved_bytes)} still needed`;
}
function go(to) { current = Math.min(Math.max(to, 0), last); render(); }
document.getElementById("first").onclick = () => go(0);
document.getElementById("previous").onclick = () => go(current - 1);
document.getElementById("next").onclick = () => go(current + 1);
document.getElementById("last").onclick = () => go(last);
document.getElementById("predict").onchange = () => {  // ticking it starts a new quiz
  for (const index of Object.keys(answers)) delete answers[index];
  render();
};
document.addEventListener("keydown", e => {
  if (e.target.tagName === "INPUT" && e.target.type === "text") return;  // typing an answer
  if (e.key === "ArrowRight") go(current + 1);
  if (e.key === "ArrowLeft") go(current - 1);
});
render();
"""

PAGE = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>__TITLE__</title>\n<style>" + STYLE
        + "</style></head>\n<body>" + BODY + "<script type=\"application/json\" id=\"trace-data\">__DATA__</script>\n"
        + "<script>" + GRAPH_SCRIPT + PANEL_SCRIPT + STEPPER_SCRIPT + "</script></body></html>\n")


def render(data: dict, title: str) -> str:
    """The page for a Trace.to_json() result."""
    payload = json.dumps(data).replace("</", "<\\/")  # a "</script>" inside a string must not end the script
    return PAGE.replace("__TITLE__", html.escape(title)).replace("__DATA__", payload)
