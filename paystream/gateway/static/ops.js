// The ops page: reads /ops/data with the operators' token every few seconds
// and draws it. No library: every chart is a few SVG polylines.
"use strict";

const REFRESH_MS = 3000;
const COLOURS = ["#2f6fdb", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#0b7285"];
const SVG = "http://www.w3.org/2000/svg";

function token() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) {
    sessionStorage.setItem("opsToken", fromHash);
    history.replaceState(null, "", location.pathname);
  }
  return sessionStorage.getItem("opsToken");
}

function text(id, value) {
  document.getElementById(id).textContent = value;
}

function fmt(value, digits = 2) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return Number(value).toFixed(digits);
}

function pct(value) {
  return value === null || value === undefined ? "–" : (100 * value).toFixed(2) + " %";
}

function seconds(value) {
  if (value === null || value === undefined) return "–";
  return value < 1 ? (value * 1000).toFixed(0) + " ms" : value.toFixed(2) + " s";
}

function firstValue(panel, match) {
  if (!panel || !panel.values) return null;
  const found = panel.values.find((v) => !match || Object.entries(match).every(([k, x]) => v.labels[k] === x));
  return found ? found.value : null;
}

function lastPoint(panel, match) {
  if (!panel || !panel.series) return null;
  const series = panel.series.find((s) => Object.entries(match).every(([k, x]) => s.labels[k] === x));
  if (!series) return null;
  const points = series.points.filter((p) => p[1] !== null);
  return points.length ? points[points.length - 1][1] : null;
}

function chart(id, panel, labelKey) {
  const svg = document.getElementById(id);
  const legend = document.getElementById("legend-" + id.replace("chart-", ""));
  svg.replaceChildren();
  legend.replaceChildren();
  const series = (panel && panel.series) || [];
  const points = series.flatMap((s) => s.points.filter((p) => p[1] !== null));
  const [w, h, left, bottom] = [600, 200, 44, 18];
  const axis = document.createElementNS(SVG, "path");
  axis.setAttribute("class", "axis");
  axis.setAttribute("d", `M${left},4 V${h - bottom} H${w - 4}`);
  svg.appendChild(axis);
  if (!points.length) {
    const empty = document.createElementNS(SVG, "text");
    empty.setAttribute("x", left + 10);
    empty.setAttribute("y", 30);
    empty.textContent = "no data yet";
    svg.appendChild(empty);
    return;
  }
  const t0 = Math.min(...points.map((p) => p[0]));
  const t1 = Math.max(...points.map((p) => p[0]), t0 + 1);
  const top = Math.max(...points.map((p) => p[1]), 1e-9) * 1.1;
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (w - left - 4);
  const y = (v) => h - bottom - (v / top) * (h - bottom - 4);
  const scale = document.createElementNS(SVG, "text");
  scale.setAttribute("x", 2);
  scale.setAttribute("y", 12);
  scale.textContent = fmt(top, top < 10 ? 2 : 0);
  svg.appendChild(scale);
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const line = document.createElementNS(SVG, "polyline");
    const drawn = s.points.filter((p) => p[1] !== null).map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`);
    line.setAttribute("points", drawn.join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", colour);
    line.setAttribute("stroke-width", "2");
    svg.appendChild(line);
    if (drawn.length === 1) {
      const [cx, cy] = drawn[0].split(",");
      const dot = document.createElementNS(SVG, "circle");
      dot.setAttribute("cx", cx);
      dot.setAttribute("cy", cy);
      dot.setAttribute("r", "3");
      dot.setAttribute("fill", colour);
      svg.appendChild(dot);
    }
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = colour;
    item.appendChild(swatch);
    item.appendChild(document.createTextNode(s.labels[labelKey] || "all"));
    legend.appendChild(item);
  });
}

function rows(id, items, cells) {
  const body = document.getElementById(id);
  body.replaceChildren();
  for (const item of items) {
    const tr = document.createElement("tr");
    for (const cell of cells(item)) {
      const td = document.createElement("td");
      td.textContent = cell === null || cell === undefined ? "–" : String(cell);
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  if (!items.length) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = 5;
    td.textContent = "none";
    tr.appendChild(td);
    body.appendChild(tr);
  }
}

function draw(data) {
  const p = data.panels;
  const success = data.success;
  text("success-rate", pct(success.rate));
  text("success-ci", `95 % CI ${pct(success.ci95[0])} – ${pct(success.ci95[1])} of ${success.decided}`);
  text("tps-settled", fmt(lastPoint(p.throughput, { stage: "settled" })));
  text("tps-scored", "scored " + fmt(lastPoint(p.throughput, { stage: "scored" })) + " / s");
  text("p99-settled", seconds(lastPoint(p.latency_p99, { stage: "settled" })));
  text("p50-settled", "p50 " + seconds(lastPoint(p.latency_p50, { stage: "settled" })));
  text("dlq-5m", fmt(firstValue(p.dead_letters_5m), 0));
  const reviews = data.reviews;
  text("reviews-pending", reviews ? reviews.pending : "–");
  text("reviews-oldest", reviews && reviews.oldest_s !== null ? "oldest " + seconds(reviews.oldest_s) : "none waiting");
  const chain = data.chain;
  text("chain-head", fmt(chain.head, 0));
  text("chain-confirmations", `listener at ${fmt(chain.listener, 0)} (${fmt(chain.behind, 0)} behind); settled at ${chain.confirmations_min} confirmations, final at ${chain.finality_depth}`);
  const alerts = data.alerts || [];
  const low = alerts.some((a) => a.name === "SuccessRateLow");
  document.getElementById("success-rate").parentElement.classList.toggle("bad", low);
  text("alerts-count", data.alerts ? alerts.length : "–");
  text("halted", chain.halted ? "settlement HALTED" : "settlement running");
  chart("chart-lag", p.lag_seconds, "group");
  chart("chart-throughput", p.throughput, "stage");
  chart("chart-latency", p.latency_p99, "stage");
  rows("alerts", alerts, (a) => [a.name, a.severity, a.summary, a.since]);
  rows("dead-letters", data.dead_letters || [], (d) => [d.occurred_at, d.stage, d.source, d.size, d.error]);
  const holds = (p.oldest_hold && p.oldest_hold.series) || [];
  rows("holds", holds, (s) => {
    const values = s.points.filter((x) => x[1] !== null);
    return [s.labels.status, values.length ? fmt(values[values.length - 1][1], 1) : null];
  });
  text("updated", "updated " + new Date(data.at).toLocaleTimeString());
  const problems = Object.entries(data.sources).filter(([, state]) => state !== "ok");
  text("problems", problems.map(([name, state]) => `${name}: ${state}`).join("; "));
}

async function refresh() {
  const key = token();
  if (!key) {
    document.getElementById("login").hidden = false;
    return;
  }
  let reply;
  try {
    reply = await fetch("/ops/data", { headers: { Authorization: "Bearer " + key } });
  } catch (err) {
    text("problems", "the gateway does not answer");
    return;
  }
  if (reply.status === 401) {
    sessionStorage.removeItem("opsToken");
    document.getElementById("board").hidden = true;
    document.getElementById("login").hidden = false;
    text("login-error", "that token is not valid");
    return;
  }
  if (!reply.ok) {
    text("problems", "the gateway answered " + reply.status);
    return;
  }
  document.getElementById("login").hidden = true;
  document.getElementById("board").hidden = false;
  draw(await reply.json());
}

document.getElementById("login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("opsToken", document.getElementById("token").value);
  refresh();
});

refresh();
setInterval(refresh, REFRESH_MS);
