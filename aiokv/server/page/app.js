// The aiokv page: stats, keys by prefix a page at a time, a key's value, delete.
// Plain DOM and fetch, no build step. Keys and values are shown with textContent only, never
// as HTML. The token, when the server has one, is kept in sessionStorage: this tab only.
"use strict";

const PAGE_SIZE = 50;
const TOKEN_ITEM = "aiokv-token";
const $ = (id) => document.getElementById(id);

const state = { prefix: "", cursors: [""], page: 0, next: null, key: null };

class Unauthorized extends Error {}

// encodeURIComponent leaves "." as it is, and a browser would resolve a key "." or ".."
// as a path segment; %2E keeps it a key.
function keyUrl(key) {
  return "/v1/keys/" + encodeURIComponent(key).replace(/\./g, "%2E");
}

async function api(method, url) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_ITEM);
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(url, { method, headers });
  if (response.status === 401) {
    $("token-form").hidden = false;
    throw new Unauthorized("this server needs its token");
  }
  const body = response.status === 204 ? null : await response.json();
  if (!response.ok) throw new Error(`${body.error}: ${body.message}`);
  return body;
}

function say(text) {
  $("message").textContent = text;
}

async function attempt(action) {
  try {
    say("");
    await action();
  } catch (error) {
    say(error.message);
  }
}

async function showStats() {
  const stats = await api("GET", "/v1/stats");
  const shown = {
    "live keys": stats.live_keys,
    "live bytes": stats.live_bytes,
    "dead bytes": stats.dead_bytes,
    "disk bytes": stats.disk_bytes,
    segments: stats.segment_count,
  };
  $("stats").replaceChildren(
    ...Object.entries(shown).map(([name, value]) => {
      const item = document.createElement("div");
      const term = document.createElement("dt");
      const figure = document.createElement("dd");
      term.textContent = name;
      figure.textContent = value.toLocaleString();
      item.append(term, figure);
      return item;
    }),
  );
}

async function showPage() {
  const query = new URLSearchParams({ prefix: state.prefix, limit: PAGE_SIZE });
  const cursor = state.cursors[state.page];
  if (cursor) query.set("cursor", cursor);
  const page = await api("GET", "/v1/keys?" + query);
  state.next = page.next;
  const items = page.keys.map((key) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "key";
    button.textContent = key;
    button.title = key;
    button.setAttribute("aria-current", String(key === state.key));
    button.addEventListener("click", () => attempt(() => showKey(key)));
    item.append(button);
    return item;
  });
  if (items.length === 0) {
    const empty = document.createElement("li");
    empty.className = "empty";
    empty.textContent = state.page === 0 ? "No keys." : "No more keys.";
    items.push(empty);
  }
  $("keys").replaceChildren(...items);
  $("prev").disabled = state.page === 0;
  $("next").disabled = state.next === null;
  $("page-number").textContent = `page ${state.page + 1}`;
}

async function showKey(key) {
  const value = await api("GET", keyUrl(key));
  state.key = key;
  $("entry-key").textContent = key;
  $("value").textContent = JSON.stringify(value, null, 2);
  $("entry").hidden = false;
  for (const button of document.querySelectorAll("#keys button.key")) {
    button.setAttribute("aria-current", String(button.textContent === key));
  }
}

async function deleteKey() {
  const key = state.key;
  if (key === null || !confirm(`Delete the key "${key}"? This cannot be undone.`)) return;
  await api("DELETE", keyUrl(key));
  state.key = null;
  $("entry").hidden = true;
  say(`Deleted "${key}".`);
  await Promise.all([showPage(), showStats()]);
}

function search(prefix) {
  Object.assign(state, { prefix, cursors: [""], page: 0, next: null });
  return Promise.all([showPage(), showStats()]);
}

$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  attempt(() => search($("prefix").value));
});
$("next").addEventListener("click", () =>
  attempt(() => {
    state.cursors[state.page + 1] = state.next;
    state.page += 1;
    return showPage();
  }),
);
$("prev").addEventListener("click", () =>
  attempt(() => {
    state.page = Math.max(0, state.page - 1);
    return showPage();
  }),
);
$("delete").addEventListener("click", () => attempt(deleteKey));
$("refresh").addEventListener("click", () => attempt(() => Promise.all([showPage(), showStats()])));
$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_ITEM, $("token").value);
  $("token").value = "";
  $("token-form").hidden = true;
  attempt(() => search(state.prefix));
});

attempt(() => search(""));
