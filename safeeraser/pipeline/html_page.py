"""The HTML report's page (html_report.py fills the {{...}} slots): styles, the tables, the chart and the
answer browser's script, all inline so that the file works offline, opened from disk."""

PAGE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{title}}</title>
<style>
  body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1d232b; background: #f6f7f9; }
  header { background: #23395d; color: #fff; padding: 14px 24px; }
  header h1 { margin: 0; font-size: 20px; }
  main { padding: 12px 24px 40px; }
  section { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: 12px 16px; margin: 14px 0;
            overflow-x: auto; }  /* a wide table (the attacks side by side) scrolls inside its section */
  table { border-collapse: collapse; font-size: 12.5px; margin: 6px 0 12px; }
  th, td { border: 1px solid #dde1e7; padding: 3px 7px; text-align: right; white-space: nowrap; }
  th:first-child, td:first-child { text-align: left; }
  th { background: #eef1f5; }
  img.chart { max-width: 100%; }
  #filters { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; margin-bottom: 10px; }
  #filters label { font-weight: 600; }
  .entry { display: grid; grid-template-columns: 170px 1fr; gap: 12px; border-top: 1px solid #dde1e7; padding: 10px 0; }
  .entry img { width: 160px; border-radius: 4px; }
  .meta { color: #5b6675; font-size: 12px; }
  .question { font-weight: 600; margin: 2px 0 6px; }
  .answers th, .answers td { text-align: left; white-space: normal; vertical-align: top; max-width: 420px; }
  .badge { display: inline-block; font-size: 11px; padding: 0 5px; border-radius: 3px; margin-right: 3px; }
  .harmful { background: #fbd5d5; color: #8a1010; }
  .refusal { background: #d6ecd9; color: #14532d; }
  .degenerate { background: #fde8c8; color: #7a4a00; }
  .unknown { background: #e5e7eb; color: #374151; }
  .not-normal { background: #e0d4f7; color: #3b1d78; }
  #count { font-weight: 600; }
</style>
</head>
<body>
<header><h1>{{title}}</h1></header>
<main>
<section id="tables">
<p class="meta">All values in percent, [low, high]: 95% intervals over images (see report.md for the notes). Judge: {{judge}}.</p>
{{tables}}
{{chart}}
</section>
<section id="browser">
<h2>Answers</h2>
<div id="filters">
  <label for="f-method">method</label><select id="f-method"></select>
  <label for="f-category">category</label><select id="f-category"></select>
  <label for="f-split">split</label><select id="f-split"></select>
  <label for="f-label">label</label>
  <select id="f-label">
    <option value="">any</option><option value="harmful">harmful</option><option value="refusal">refusal</option>
    <option value="degenerate">degenerate</option><option value="unknown">judge unsure</option>
  </select>
  <input id="f-search" type="search" placeholder="search questions and answers" size="32">
  <span id="count"></span>
</div>
<div id="entries"></div>
</section>
</main>
<script id="data" type="application/json">{{data}}</script>
<script>
"use strict";
const DATA = JSON.parse(document.getElementById("data").textContent);
const SHOWN = 300;  // entries drawn at once: the filters narrow the rest down
const $ = (id) => document.getElementById(id);
const base = (method) => method.endsWith("pd") ? method.slice(0, -2) : method;

function fill(select, values, labels) {
  select.innerHTML = "";
  values.forEach((v, i) => {
    const o = document.createElement("option");
    o.value = v; o.textContent = labels ? labels[i] : (v || "all");
    select.appendChild(o);
  });
}

function setup() {
  const methods = [...new Set(DATA.runs.map((r) => base(r.method)).filter((m) => m !== "vanilla"))];
  fill($("f-method"), ["", ...methods], ["all", ...methods.map((m) => m + " ± PD")]);
  fill($("f-category"), ["", ...[...new Set(DATA.entries.map((e) => e.category))].sort()]);
  const splits = Object.keys(DATA.splits);
  fill($("f-split"), ["", ...splits], ["all", ...splits.map((s) => s + ": " + DATA.splits[s])]);
  const params = new URLSearchParams(location.hash.slice(1));
  for (const [key, id] of [["method", "f-method"], ["category", "f-category"], ["split", "f-split"],
                           ["label", "f-label"], ["q", "f-search"]]) {
    if (params.has(key)) $(id).value = params.get(key);
    $(id).addEventListener(id === "f-search" ? "input" : "change", () => { remember(); render(); });
  }
}

function remember() {
  const params = new URLSearchParams();
  for (const [key, id] of [["method", "f-method"], ["category", "f-category"], ["split", "f-split"],
                           ["label", "f-label"], ["q", "f-search"]]) {
    if ($(id).value) params.set(key, $(id).value);
  }
  history.replaceState(null, "", "#" + params.toString());
}

function flags(answer, k) {
  const out = [];
  const l = answer.labels[k] || {};
  if (l.asr === "unsafe") out.push("harmful");
  if (l.rr === "refuse") out.push("refusal");
  if (answer.degenerate[k]) out.push("degenerate");
  if (l.asr === "unknown" || l.rr === "unknown") out.push("unknown");
  return out;
}

function shownAnswers(entry, method) {
  return entry.answers.filter((a) => {
    const m = DATA.runs[a.run].method;
    return !method || m === "vanilla" || base(m) === method;
  });
}

function matches(entry, answers, label, query) {
  if ($("f-category").value && entry.category !== $("f-category").value) return false;
  if ($("f-split").value && entry.split !== $("f-split").value) return false;
  const own = answers.filter((a) => DATA.runs[a.run].method !== "vanilla");
  if (label && !own.some((a) => a.texts.some((_, k) => flags(a, k).includes(label)))) return false;
  if (query) {
    const text = (entry.question + " " + answers.map((a) => a.texts.join(" ") + " " + a.sd).join(" ")).toLowerCase();
    if (!text.includes(query)) return false;
  }
  return true;
}

function cell(row, content, cls) {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  if (typeof content === "string") td.textContent = content; else td.appendChild(content);
  row.appendChild(td);
}

function answerCell(text, names) {
  const div = document.createElement("div");
  for (const name of names) {
    const b = document.createElement("span");
    b.className = "badge " + name; b.textContent = name;
    div.appendChild(b);
  }
  const span = document.createElement("span");
  span.textContent = text === "" ? "(empty)" : text;
  div.appendChild(span);
  return div;
}

function drawEntry(entry, answers) {
  const box = document.createElement("div");
  box.className = "entry";
  const img = document.createElement("img");
  img.alt = entry.path; img.src = DATA.images[entry.image] || "";
  box.appendChild(img);
  const right = document.createElement("div");
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = `${entry.split} · ${entry.category} · record ${entry.record}, question ${entry.pair + 1} · ${entry.path}`;
  const q = document.createElement("div");
  q.className = "question"; q.textContent = entry.question;
  const table = document.createElement("table");
  table.className = "answers";
  const head = document.createElement("tr");
  ["run", "answer 1", "answer 2", "answer 3", "on the SD image"].forEach((h) => {
    const th = document.createElement("th"); th.textContent = h; head.appendChild(th);
  });
  table.appendChild(head);
  for (const a of answers) {
    const row = document.createElement("tr");
    cell(row, DATA.runs[a.run].label);
    a.texts.forEach((t, k) => cell(row, answerCell(t, flags(a, k))));
    // SARR counts an answer about the harmless SD image that is not a normal answer
    const sd = {not_normal: ["not-normal"], unknown: ["unknown"]}[a.sd_label] || [];
    cell(row, answerCell(a.sd, sd));
    table.appendChild(row);
  }
  right.append(meta, q, table);
  box.appendChild(right);
  return box;
}

function render() {
  const method = $("f-method").value, label = $("f-label").value;
  const query = $("f-search").value.trim().toLowerCase();
  const list = $("entries");
  list.innerHTML = "";
  let n = 0;
  for (const entry of DATA.entries) {
    const answers = shownAnswers(entry, method);
    if (!matches(entry, answers, label, query)) continue;
    if (n < SHOWN) list.appendChild(drawEntry(entry, answers));
    n += 1;
  }
  $("count").textContent = `${n} of ${DATA.entries.length} questions` + (n > SHOWN ? ` (first ${SHOWN} shown)` : "");
  $("count").dataset.shown = String(Math.min(n, SHOWN));
  $("count").dataset.matching = String(n);
}

setup();
render();
document.body.dataset.ready = "1";
</script>
</body>
</html>
"""
