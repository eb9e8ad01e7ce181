// mmrec live recommender page: plain JavaScript, same-origin requests only.
"use strict";

const $ = (id) => document.getElementById(id);
let current = null;  // the item in the player

async function api(path, options) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch (e) { body = { error: response.statusText }; }
  if (!response.ok) { throw new Error(`${response.status}: ${body.error || "request failed"}`); }
  return body;
}

function user() { return $("user-free").value.trim() || $("user").value; }

function partsView(parts) {
  const box = document.createElement("div");
  box.className = "parts";
  if (!parts) { box.textContent = "no exact per-modality split for this model"; return box; }
  const scale = Math.max(...Object.values(parts).map(Math.abs), 1e-9);
  for (const [name, value] of Object.entries(parts)) {
    const row = document.createElement("div");
    const bar = document.createElement("span");
    bar.className = value < 0 ? "bar neg" : "bar";
    bar.style.width = `${Math.round(50 * Math.abs(value) / scale)}px`;
    row.append(`${name} ${value.toFixed(3)} `, bar);
    box.append(row);
  }
  return box;
}

function card(item) {
  const li = document.createElement("li");
  li.className = "card";
  const img = document.createElement("img");
  img.src = item.cover;
  img.alt = item.title;
  img.addEventListener("click", () => play(item));
  const title = document.createElement("div");
  title.className = "title";
  title.textContent = item.title;
  const score = document.createElement("div");
  score.className = "muted";
  score.textContent = `${item.item_id} · score ${item.score.toFixed(3)}`;
  li.append(img, title, score);
  if (item.live) {
    const tag = document.createElement("div");
    tag.className = "live";
    tag.textContent = "uploaded live";
    li.append(tag);
  }
  if ("parts" in item) { li.append(partsView(item.parts)); }
  return li;
}

async function recommend() {
  const who = user();
  if (!who) { return; }
  $("status").textContent = "loading…";
  try {
    const k = encodeURIComponent($("k").value || "8");
    const body = await api(`/recommend?user=${encodeURIComponent(who)}&k=${k}`);
    $("recs").replaceChildren(...body.items.map(card));
    $("cold").hidden = !body.cold_start;
    $("parts-note").textContent = `Score parts: ${body.parts_note}`;
    $("status").textContent = `${body.items.length} items in ${body.elapsed_ms} ms`;
  } catch (error) { $("status").textContent = error.message; }
}

async function play(item) {
  current = item;
  $("player").src = item.clip;
  $("now-title").textContent = `${item.title} (${item.item_id})`;
  $("watched").disabled = false;
  try {
    const body = await api(`/similar?item=${encodeURIComponent(item.item_id)}&k=6`);
    $("similar").replaceChildren(...body.items.map(card));
  } catch (error) { $("similar").textContent = error.message; }
}

async function watched() {
  if (!current || !user()) { return; }
  try {
    await api("/view", { method: "POST", headers: { "Content-Type": "application/json" },
                         body: JSON.stringify({ user: user(), item: current.item_id }) });
    await recommend();
  } catch (error) { $("status").textContent = error.message; }
}

async function ingest(event) {
  event.preventDefault();
  $("upload-status").textContent = "encoding…";
  try {
    const body = await api("/ingest", { method: "POST", body: new FormData(event.target) });
    const t = body.timings;
    $("upload-status").textContent =
      `added ${body.item_id} in ${t.total_s.toFixed(2)} s (queued ${t.queued_s.toFixed(2)} s)`;
    await play(body);
    await recommend();
  } catch (error) { $("upload-status").textContent = error.message; }
}

async function start() {
  try {
    const health = await api("/health");
    $("health").textContent =
      `${health.items} items, ${health.users} users, modalities: ${health.modalities.join(", ")}`;
    const users = await api("/users?limit=200");
    $("user").replaceChildren(...users.users.map((u) => new Option(u, u)));
    await recommend();
  } catch (error) { $("health").textContent = error.message; }
}

$("go").addEventListener("click", recommend);
$("user").addEventListener("change", () => { $("user-free").value = ""; recommend(); });
$("watched").addEventListener("click", watched);
$("upload").addEventListener("submit", ingest);
start();
