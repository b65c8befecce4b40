"""A Trace as one self-contained HTML page: the graph drawn in inline SVG, and a step-through of backward.

Nothing is fetched: the trace travels as JSON inside the page, the drawing and the stepping are a
short script below. The layout is layered: one column per distance from the loss, so a deep
network scrolls sideways. Left/right arrow keys (or the buttons) move through the steps; the current
tensor is outlined in red, the parents it sends gradients to in orange, finished tensors are gray. The
header shows how many bytes of what the forward saved the steps still to come need; each step's panel,
what its node saved.
"""
import html
import json

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0; color: #222; }
header { padding: 0.6em 1em; border-bottom: 1px solid #ccc; display: flex; gap: 0.6em; align-items: center; }
header h1 { font-size: 1.1em; margin: 0 1em 0 0; }
button { font-size: 1em; padding: 0.2em 0.8em; }
main { display: flex; height: calc(100vh - 3.2em); }
#graph { flex: 3; overflow: auto; border-right: 1px solid #ccc; }
#panel { flex: 2; overflow: auto; padding: 0.6em 1em; font-size: 0.9em; }
#panel table { border-collapse: collapse; } #panel td, #panel th { border: 1px solid #ddd; padding: 0.15em 0.4em; }
#panel code { background: #f4f4f4; }
.node rect { fill: #eef4ff; stroke: #6a8ccf; stroke-width: 1.2; rx: 6; }
.node.leaf rect { fill: #eaf7ea; stroke: #4f9a4f; } .node.const rect { fill: #f4f4f4; stroke: #bbb; }
.node.done rect { fill: #e2e2e2; } .node.receiving rect { stroke: #e08a00; stroke-width: 3; }
.node.current rect { stroke: #d00; stroke-width: 4; fill: #fff3f3; }
.node text { font-size: 12px; text-anchor: middle; dominant-baseline: middle; pointer-events: none; }
.edge { fill: none; stroke: #999; stroke-width: 1.2; } .edge.active { stroke: #e08a00; stroke-width: 3; }
</style></head>
<body>
<header><h1>__TITLE__</h1>
<button id="first">|&lt;</button><button id="previous">&lt; previous</button>
<button id="next">next &gt;</button><button id="last">&gt;|</button><span id="counter"></span>
<span id="memory"></span></header>
<main><div id="graph"></div><div id="panel"></div></main>
<script type="application/json" id="trace-data">__DATA__</script>
<script>
"use strict";
const trace = JSON.parse(document.getElementById("trace-data").textContent);
const ids = Object.keys(trace.nodes).map(Number).sort((a, b) => a - b);
const W = 150, H = 34, GX = 40, GY = 14;
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
         `(${n.shape.join(", ")}) ${esc(n.call_site)}` +
         `${n.saved_bytes ? ", saved " + bytes(n.saved_bytes) : ""}</title>` +
         `<rect x="${pos[id].x}" y="${pos[id].y}" width="${W}" height="${H}"/>` +
         `<text x="${pos[id].x + W / 2}" y="${pos[id].y + H / 2}">t${id} ${esc(n.label).slice(0, 18)}</text></g>`;
}
document.getElementById("graph").innerHTML = svg + "</svg>";

function show(summary) {
  const values = summary.values.map(v => Number(v).toPrecision(4)).join(", ");
  const shape = `shape (${summary.shape.join(", ")})`;
  return summary.whole ? `<code>[${values}]</code> <small>${shape}</small>`
    : `${shape}, norm ${Number(summary.norm).toPrecision(4)}, first values <code>[${values}, ...]</code>`;
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
function describeStep(step) {
  const n = trace.nodes[step.tensor];
  let out = `<h2>Step ${step.index}: t${step.tensor} ${esc(n.label)}</h2>`;
  const typed = id => `t${id} (${trace.nodes[id].shape.join(", ")}) ${trace.nodes[id].dtype}`;
  out += n.op ? `<p>${typed(step.tensor)} = ${esc(n.op)}(${n.parents.map(typed).join(", ")})</p>`
              : `<p>a leaf: ${typed(step.tensor)}</p>`;
  if (n.call_site) out += `<p>made at <code>${esc(n.call_site)}</code></p>`;
  if (step.contributions.length > 1) out += `<p><b>Accumulation:</b> its gradient is the sum of ` +
      `${step.contributions.length} contributions, sent at ${countedSteps(step.contributions)}.</p>`;
  out += `<p>grad_out (d loss / d t${step.tensor}): ${show(step.grad_out)}</p>`;
  const saved = Object.entries(n.saved);
  if (saved.length) out += `<p>saved by the forward for backward (<span class="saved-bytes">` +
      `${bytes(n.saved_bytes)}</span>):</p><ul>` +
      saved.map(([k, v]) => `<li>${esc(k)}: ${show(v)}</li>`).join("") + `</ul>`;
  if (step.to_parents.length) out += `<p>gradients sent to the parents:</p><table><tr><th>parent</th>` +
      `<th>gradient</th><th>un-broadcast</th></tr>` + step.to_parents.map(s => `<tr><td>t${s.parent}</td>` +
      `<td>${show(s.grad)}</td><td>${s.summed_axes.length ? "summed over axes (" + s.summed_axes.join(", ") +
      ") of (" + s.from_shape.join(", ") + ")" : ""}</td></tr>`).join("") + `</table>`;
  if (step.leaf_grad) out += `<p>.grad of this leaf is now ${show(step.leaf_grad)}</p>`;
  return out;
}
let current = 0;
const last = trace.steps.length + 1;
function render() {
  document.querySelectorAll(".node").forEach(g => g.classList.remove("current", "receiving", "done"));
  document.querySelectorAll(".edge").forEach(e => e.classList.remove("active"));
  trace.steps.slice(0, Math.max(current - 1, 0)).forEach(s =>
    document.getElementById("node-" + s.tensor).classList.add("done"));
  const panel = document.getElementById("panel");
  if (current === 0) {
    panel.innerHTML = `<h2>The forward graph</h2><p>${ids.length} tensors, ${trace.steps.length} backward ` +
      `steps. Press <b>next</b> (or the right arrow key) to run backward one tensor at a time, ` +
      `in reverse topological order.</p>`;
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
document.addEventListener("keydown", e => {
  if (e.key === "ArrowRight") go(current + 1);
  if (e.key === "ArrowLeft") go(current - 1);
});
render();
</script></body></html>
"""


def render(data: dict, title: str) -> str:
    """The page for a Trace.to_json() result."""
    payload = json.dumps(data).replace("</", "<\\/")  # a "</script>" inside a string must not end the script
    return PAGE.replace("__TITLE__", html.escape(title)).replace("__DATA__", payload)
