// snowlink's page: shortens through POST /v1/urls (with tags, a password, a visit limit), shows the short link
// with its QR code, and lists the caller's links (filtered by tag and search, exported as CSV) with hits, a 30-day
// chart and where their clicks come from; a link's target and tags are edited in place (PATCH). Plain DOM, no
// library; text is only ever set through textContent.
"use strict";

const KEY_STORAGE = "snowlink.apiKey";
const PAGE_SIZE = 10;
const CHART_DAYS = 30;
const SVG_NS = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);
const allowAnonymous = document.body.dataset.allowAnonymous === "true";

// ---------------------------------------------------------------- the API

function storedKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

/** Calls the API; resolves to {status, body, headers} and never throws on HTTP errors. */
async function api(method, path, body) {
  const headers = {};
  const key = storedKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    return { status: 0, body: null, headers: new Headers() };
  }
  let parsed = null;
  if ((response.headers.get("content-type") || "").includes("json")) {
    parsed = await response.json().catch(() => null);
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

/** An image from the API (it needs the key in a header, which <img src> cannot send) as a blob: URL. */
async function apiImage(path) {
  const key = storedKey();
  try {
    const response = await fetch(path, { headers: key ? { Authorization: `Bearer ${key}` } : {} });
    if (!response.ok) return null;
    return URL.createObjectURL(await response.blob());
  } catch {
    return null;
  }
}

function showImage(img, url) {
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  if (url) {
    img.src = url;
    img.hidden = false;
  } else {
    img.removeAttribute("src");
    img.hidden = true;
  }
}

// ------------------------------------------------------ errors in words

/** What went wrong, for a person, and which field it concerns. */
function explain(answer) {
  const error = (answer.body && answer.body.error) || {};
  const message = error.message || "";
  switch (error.code) {
    case "invalid_url":
      if (message.includes("user name or password")) {
        return { field: "long-url", text: "Links with a user name or password in them are not allowed." };
      }
      if (message.includes("redirect loop")) {
        return { field: "long-url", text: "This is already a link of this shortener; it cannot point to itself." };
      }
      if (message.includes("longer than")) {
        return { field: "long-url", text: "This link is too long: at most 2048 characters." };
      }
      return { field: "long-url", text: "Enter a full web address that starts with http:// or https://." };
    case "blocked_domain":
      return { field: "long-url", text: "Links to this site are not allowed here." };
    case "body_too_large":
      return { field: "long-url", text: "This link is too long." };
    case "invalid_alias":
      return { field: "alias", text: "An alias is 3 to 64 letters, digits, _ or -, with no spaces." };
    case "reserved_alias":
      return { field: "alias", text: "This alias is reserved by the service. Choose another one." };
    case "alias_taken":
      return { field: "alias", text: "This alias is already taken. Choose another one." };
    case "expires_in_past":
      return { field: "expires-at", text: "The expiry must be in the future." };
    case "invalid_expires_at":
      return { field: "expires-at", text: "This is not a valid date and time." };
    case "invalid_redirect":
      return { field: "redirect", text: "Choose one of the redirect types in the list." };
    case "invalid_tags":
      return { field: "tags", text: "Up to 10 tags, each 1 to 32 of a-z, 0-9 and -." };
    case "invalid_password":
      return { field: "password", text: "A password is 1 to 128 characters." };
    case "invalid_max_hits":
      return { field: "max-hits", text: "A visit limit is a whole number from 1 up." };
    case "invalid_tag":
      return { field: "filter", text: "A tag is 1 to 32 of a-z, 0-9 and -." };
    case "invalid_query":
      return { field: "filter", text: "Search for 3 to 200 characters." };
    case "unauthorized":
      return storedKey()
        ? { field: "api-key", text: "This API key is not valid (or was revoked). Check it and save it again." }
        : { field: "api-key", text: "This shortener needs an API key. Enter yours above." };
    case "rate_limited": {
      const wait = answer.headers.get("retry-after");
      return { field: "form", text: `Too many requests. Wait ${wait || "a few"} seconds and try again.` };
    }
    case "unavailable":
      return { field: "form", text: "The service is briefly unavailable. Try again in a moment." };
    case "not_found":
      return { field: "form", text: "That link no longer exists." };
    default:
      if (answer.status === 0) {
        return { field: "form", text: "The shortener cannot be reached. Check your connection and try again." };
      }
      return { field: "form", text: message || `Something went wrong (HTTP ${answer.status}). Try again.` };
  }
}

const FIELDS = ["long-url", "alias", "expires-at", "redirect", "tags", "password", "max-hits"];

function clearErrors() {
  for (const id of [...FIELDS, "api-key"]) {
    $(id).removeAttribute("aria-invalid");
    hideMessage($(`${id}-error`));
  }
  hideMessage($("form-error"));
}

function hideMessage(element) {
  element.textContent = "";
  element.hidden = true;
}

function showMessage(element, text) {
  element.textContent = text;
  element.hidden = false;
}

function showError(field, text) {
  if (field === "form" || field === "filter") {
    showMessage($(`${field}-error`), text);
    return;
  }
  const input = $(field);
  input.setAttribute("aria-invalid", "true");
  showMessage($(`${field}-error`), text);
  input.focus();
}

// ------------------------------------------------------------ the key

function showKeyState() {
  const key = storedKey();
  $("forget-key").hidden = !key;
  $("api-key").value = "";
  $("api-key").placeholder = key ? "saved (enter a new one to replace it)" : "sl_…";
  let status;
  if (key) status = "A key is saved in this browser.";
  else if (allowAnonymous) status = "No key saved: you can still shorten links anonymously.";
  else status = "No key saved: enter one to shorten links.";
  $("key-status").textContent = status;
}

function saveKey(event) {
  event.preventDefault();
  hideMessage($("api-key-error"));
  $("api-key").removeAttribute("aria-invalid");
  const key = $("api-key").value.trim();
  if (!key) {
    showError("api-key", "Enter your API key first.");
    return;
  }
  localStorage.setItem(KEY_STORAGE, key);
  showKeyState();
  links.first();
}

function forgetKey() {
  localStorage.removeItem(KEY_STORAGE);
  showKeyState();
  links.first();
  $("api-key").focus();
}

// ------------------------------------------------------------ shorten

function requestFromForm() {
  const request = { long_url: $("long-url").value.trim() };
  const alias = $("alias").value.trim();
  if (alias) request.alias = alias;
  const expires = $("expires-at").value;
  if (expires) {
    const at = new Date(expires);
    if (Number.isNaN(at.getTime())) return { error: { field: "expires-at", text: "This is not a valid date and time." } };
    request.expires_at = at.toISOString();
  }
  request.redirect = Number($("redirect").value);
  const tags = parseTags($("tags").value);
  if (tags.length) request.tags = tags;
  const password = $("password").value;
  if (password) request.password = password;
  const maxHits = $("max-hits").value.trim();
  if (maxHits) {
    if (!/^[0-9]+$/.test(maxHits) || Number(maxHits) < 1) {
      return { error: { field: "max-hits", text: "A visit limit is a whole number from 1 up." } };
    }
    request.max_hits = Number(maxHits);
  }
  if (!request.long_url) return { error: { field: "long-url", text: "Paste the long link to shorten." } };
  return { request };
}

/** Tags as typed (apart by spaces or commas), lowercased and without repeats; the API checks the rest. */
function parseTags(text) {
  const tags = text.toLowerCase().split(/[\s,]+/).filter(Boolean);
  return [...new Set(tags)];
}

async function shorten(event) {
  event.preventDefault();
  clearErrors();
  if (!storedKey() && !allowAnonymous) {
    showError("api-key", "This shortener needs an API key. Enter yours above.");
    return;
  }
  const { request, error } = requestFromForm();
  if (error) {
    showError(error.field, error.text);
    return;
  }
  const button = $("shorten-button");
  button.disabled = true;
  try {
    const answer = await api("POST", "/v1/urls", request);
    if (answer.status === 200 || answer.status === 201) {
      await showResult(answer.body);
      $("shorten-form").reset();
      links.first();
    } else {
      const problem = explain(answer);
      showError(problem.field, problem.text);
    }
  } finally {
    button.disabled = false;
  }
}

async function showResult(link) {
  const anchor = $("short-link");
  anchor.href = link.short_url;
  anchor.textContent = link.short_url;
  $("result-long").textContent = `→ ${link.long_url}`;
  $("copy-status").textContent = "";
  $("result").hidden = false;
  showImage($("result-qr"), await apiImage(`/v1/urls/${encodeURIComponent(link.code)}/qr?size=320`));
}

async function copyShortLink() {
  const text = $("short-link").textContent;
  let copied = false;
  if (navigator.clipboard && window.isSecureContext) {
    copied = await navigator.clipboard.writeText(text).then(() => true, () => false);
  }
  if (!copied) {
    const scratch = document.createElement("textarea");
    scratch.value = text;
    document.body.append(scratch);
    scratch.select();
    copied = document.execCommand("copy");
    scratch.remove();
  }
  $("copy-status").textContent = copied ? "Copied." : "Copy failed: select the link and copy it by hand.";
}

// ----------------------------------------------------------- my links

/** A 30-day bar chart as SVG, with a summary for screen readers and a tooltip per day. */
function chart(hits) {
  const width = 10;
  const height = 60;
  const max = Math.max(1, ...hits.days.map((day) => day.hits));
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("viewBox", `0 0 ${hits.days.length * width} ${height + 2}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  const busiest = hits.days.reduce((best, day) => (day.hits > best.hits ? day : best), hits.days[0]);
  const summary =
    `Hits per day over the last ${hits.days.length} days: ${hits.total} in all` +
    (busiest && busiest.hits > 0 ? `, most on ${busiest.day} (${busiest.hits}).` : ".");
  svg.setAttribute("aria-label", summary);
  hits.days.forEach((day, index) => {
    const bar = document.createElementNS(SVG_NS, "rect");
    const barHeight = day.hits > 0 ? Math.max(2, (day.hits / max) * height) : 1;
    bar.setAttribute("class", day.hits > 0 ? "bar" : "bar-zero");
    bar.setAttribute("x", String(index * width + 1));
    bar.setAttribute("y", String(height + 1 - barHeight));
    bar.setAttribute("width", String(width - 2));
    bar.setAttribute("height", String(barHeight));
    const title = document.createElementNS(SVG_NS, "title");
    title.textContent = `${day.day}: ${day.hits} ${day.hits === 1 ? "hit" : "hits"}`;
    bar.append(title);
    svg.append(bar);
  });
  return svg;
}

function chartCaption(hits) {
  const first = hits.days[0].day;
  const last = hits.days[hits.days.length - 1].day;
  const total = `${hits.total} ${hits.total === 1 ? "hit" : "hits"}`;
  return element("p", "chart-caption", `Last ${hits.days.length} days (${first} to ${last}): ${total}`);
}

function element(tag, className, text) {
  const made = document.createElement(tag);
  if (className) made.className = className;
  if (text !== undefined) made.textContent = text;
  return made;
}

function describe(link) {
  const parts = [`created ${new Date(link.created_at).toLocaleString()}`];
  if (link.expires_at) parts.push(`expires ${new Date(link.expires_at).toLocaleString()}`);
  parts.push(`${link.redirect} redirect`);
  if (link.password_protected) parts.push("password-protected");
  if (link.max_hits !== null && link.max_hits !== undefined) parts.push(`limit ${link.max_hits} visits`);
  parts.push(`${link.hits} ${link.hits === 1 ? "hit" : "hits"} in all`);
  return parts.join(" · ");
}

/** A link's tags as buttons that filter the list by that tag. */
function tagButtons(link) {
  const box = element("p", "tags");
  for (const tag of link.tags || []) {
    const button = element("button", "tag", tag);
    button.type = "button";
    button.setAttribute("aria-label", `Show links tagged ${tag}`);
    button.addEventListener("click", () => filters.apply({ tag, q: "" }));
    box.append(button);
  }
  box.hidden = box.childElementCount === 0;
  return box;
}

function linkItem(link) {
  const item = element("li", "link");
  item.dataset.code = link.code;
  const main = element("div", "link-main");
  const anchor = element("a", "short", link.short_url);
  anchor.href = link.short_url;
  main.append(anchor);
  main.append(element("p", "long", link.long_url));
  main.append(tagButtons(link));
  main.append(element("p", "link-meta", describe(link)));
  const chartSlot = element("div", "chart-slot");
  const sources = sourcesView(link);
  const insight = element("div", "insight");
  insight.append(chartSlot, sources);
  main.append(insight);
  const actions = element("div", "actions");
  const edit = element("button", "secondary edit", "Edit");
  edit.type = "button";
  edit.setAttribute("aria-label", `Edit ${link.short_url}`);
  edit.addEventListener("click", () => openEditor(item, link, edit));
  const remove = element("button", "secondary delete", "Delete");
  remove.type = "button";
  remove.setAttribute("aria-label", `Delete ${link.short_url}`);
  remove.addEventListener("click", () => confirmDelete(item, link, remove));
  actions.append(edit, remove);
  main.append(actions);
  const qr = element("img", "qr link-qr");
  qr.alt = `QR code of ${link.short_url}`;
  qr.width = 96;
  qr.height = 96;
  qr.hidden = true;
  item.append(main, qr);

  const code = encodeURIComponent(link.code);
  api("GET", `/v1/urls/${code}/hits?days=${CHART_DAYS}`).then((answer) => {
    if (answer.status === 200) chartSlot.append(chart(answer.body), chartCaption(answer.body));
    else chartSlot.append(element("p", "hint", "Hits per day are unavailable right now."));
  });
  apiImage(`/v1/urls/${code}/qr?size=192`).then((url) => showImage(qr, url));
  return item;
}

// ------------------------------------------------ where clicks come from

/** A disclosure beside the chart; the breakdown is fetched the first time it is opened. */
function sourcesView(link) {
  const details = element("details", "sources");
  details.append(element("summary", "", "Where clicks come from"));
  const body = element("div", "sources-body");
  details.append(body);
  let loaded = false;
  details.addEventListener("toggle", async () => {
    if (!details.open || loaded) return;
    loaded = true;
    body.replaceChildren(element("p", "hint", "Loading…"));
    const answer = await api("GET", `/v1/urls/${encodeURIComponent(link.code)}/stats?days=${CHART_DAYS}`);
    if (answer.status !== 200) {
      loaded = false;
      body.replaceChildren(element("p", "error", explain(answer).text));
      return;
    }
    body.replaceChildren(...sourcesParts(answer.body));
  });
  return details;
}

function sourcesParts(stats) {
  const people = `${stats.total} ${stats.total === 1 ? "visit" : "visits"} by people`;
  const bots = `${stats.bots} by bots`;
  const parts = [element("p", "sources-total", `Last ${stats.days} days: ${people}, ${bots} (not counted as hits).`)];
  const devices = Object.entries(stats.devices).map(([device, hits]) => ({ name: device, hits }));
  parts.push(breakdown("Devices", "devices", devices));
  const referrers = stats.referrers.map((row) => ({ name: row.domain, hits: row.hits }));
  parts.push(breakdown("Referrers", "referrers", referrers));
  if (stats.countries.length) {
    const countries = stats.countries.map((row) => ({ name: row.country, hits: row.hits }));
    parts.push(breakdown("Countries", "countries", countries));
  }
  return parts;
}

/** A small table of names and hits, with a bar for each row's share. */
function breakdown(title, className, rows) {
  const table = element("table", `breakdown ${className}`);
  table.append(element("caption", "", title));
  const total = rows.reduce((sum, row) => sum + row.hits, 0);
  if (rows.length === 0 || total === 0) {
    const empty = element("tr");
    empty.append(element("td", "hint", "none yet"));
    table.append(empty);
    return table;
  }
  for (const row of rows) {
    const line = element("tr");
    line.dataset.name = row.name;
    line.append(element("th", "", row.name));
    line.append(element("td", "count", String(row.hits)));
    const share = element("td", "share");
    const meter = element("meter");
    meter.min = 0;
    meter.max = total;
    meter.value = row.hits;
    meter.setAttribute("aria-label", `${row.name}: ${Math.round((row.hits / total) * 100)}%`);
    share.append(meter);
    line.append(share);
    table.append(line);
  }
  return table;
}

// ------------------------------------------------------- edit in place

/** Replaces the row's target with a form for the target and tags; saved through PATCH. */
function openEditor(item, link, edit) {
  if (item.querySelector("form.editor")) return;
  edit.hidden = true;
  const form = element("form", "editor");
  form.noValidate = true;
  form.setAttribute("aria-label", `Edit ${link.short_url}`);
  const urlField = editorField("Long URL", "edit-url", link.long_url, link.code);
  urlField.input.type = "url";
  const tagsField = editorField("Tags", "edit-tags", (link.tags || []).join(" "), link.code);
  const problem = element("p", "error edit-error");
  problem.setAttribute("role", "alert");
  problem.hidden = true;
  const save = element("button", "save-edit", "Save");
  save.type = "submit";
  const cancel = element("button", "secondary cancel-edit", "Cancel");
  cancel.type = "button";
  const buttons = element("div", "actions");
  buttons.append(save, cancel);
  form.append(urlField.box, tagsField.box, buttons, problem);
  const close = () => {
    form.remove();
    edit.hidden = false;
    edit.focus();
  };
  cancel.addEventListener("click", close);
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") close();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const input of [urlField.input, tagsField.input]) input.removeAttribute("aria-invalid");
    hideMessage(problem);
    const change = { long_url: urlField.input.value.trim(), tags: parseTags(tagsField.input.value) };
    save.disabled = true;
    const answer = await api("PATCH", `/v1/urls/${encodeURIComponent(link.code)}`, change);
    save.disabled = false;
    if (answer.status === 200) {
      $("links-heading").focus();
      const warning = answer.body.warning ? ` ${answer.body.warning}` : "";
      links.reload(`Saved ${link.short_url}.${warning}`);
      return;
    }
    const why = explain(answer);
    const input = why.field === "tags" ? tagsField.input : why.field === "long-url" ? urlField.input : null;
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
    showMessage(problem, why.text);
  });
  item.querySelector(".long").after(form);
  urlField.input.focus();
}

function editorField(label, className, value, code) {
  const box = element("div", "field");
  const input = element("input", className);
  input.id = `${className}-${code}`;
  input.value = value;
  input.autocomplete = "off";
  input.spellcheck = false;
  const caption = element("label", "", label);
  caption.htmlFor = input.id;
  box.append(caption, input);
  return { box, input };
}

// ------------------------------------------------------ filter and export

/** What My links shows: all links, or those with a tag and/or containing a search text. */
const filters = {
  tag: "",
  q: "",

  query() {
    const parts = [];
    if (this.tag) parts.push(`tag=${encodeURIComponent(this.tag)}`);
    if (this.q) parts.push(`q=${encodeURIComponent(this.q)}`);
    return parts.join("&");
  },
  apply({ tag, q }) {
    this.tag = tag.trim().toLowerCase();
    this.q = q.trim();
    $("filter-tag").value = this.tag;
    $("filter-q").value = this.q;
    hideMessage($("filter-error"));
    links.first();
  },
  fromForm(event) {
    event.preventDefault();
    this.apply({ tag: $("filter-tag").value, q: $("filter-q").value });
  },
  clear() {
    this.apply({ tag: "", q: "" });
    $("filter-q").focus();
  },
};

/** Downloads the links the filter shows as CSV (the API needs the key in a header, so through a blob: URL). */
async function exportLinks() {
  const status = $("export-status");
  if (!storedKey()) {
    status.textContent = "Save your API key to export your links.";
    return;
  }
  const button = $("export-links");
  button.disabled = true;
  status.textContent = "Exporting…";
  try {
    const query = filters.query();
    const response = await fetch(`/v1/urls/export.csv${query ? `?${query}` : ""}`, {
      headers: { Authorization: `Bearer ${storedKey()}` },
    }).catch(() => null);
    if (!response || !response.ok) {
      const body = response ? await response.json().catch(() => null) : null;
      const answer = { status: response ? response.status : 0, body, headers: response ? response.headers : new Headers() };
      status.textContent = `Export failed: ${explain(answer).text}`;
      return;
    }
    const text = await response.text();
    const rows = text.split("\r\n").filter(Boolean).length - 1;
    const anchor = document.createElement("a");
    anchor.id = "export-file";
    anchor.download = "links.csv";
    anchor.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
    anchor.hidden = true;
    document.body.append(anchor);
    anchor.click();
    anchor.remove();
    setTimeout(() => URL.revokeObjectURL(anchor.href), 60000);
    status.textContent = `Exported ${rows} ${rows === 1 ? "link" : "links"} to links.csv.`;
  } finally {
    button.disabled = false;
  }
}

function confirmDelete(item, link, remove) {
  if (item.querySelector(".confirm")) return;
  remove.hidden = true;
  const box = element("div", "confirm");
  box.setAttribute("role", "group");
  box.setAttribute("aria-label", "Confirm deletion");
  box.append(element("span", "", `Delete ${link.code}? The short link will stop working.`));
  const yes = element("button", "danger confirm-delete", "Yes, delete");
  yes.type = "button";
  const no = element("button", "secondary", "Cancel");
  no.type = "button";
  no.addEventListener("click", () => {
    box.remove();
    remove.hidden = false;
    remove.focus();
  });
  yes.addEventListener("click", async () => {
    yes.disabled = true;
    const answer = await api("DELETE", `/v1/urls/${encodeURIComponent(link.code)}`);
    if (answer.status === 204 || answer.status === 404) {
      // The row and its buttons are about to vanish: keep keyboard focus somewhere that makes sense.
      $("links-heading").focus();
      links.reload(`Deleted ${link.short_url}.`);
    } else {
      yes.disabled = false;
      box.append(element("p", "error", explain(answer).text));
    }
  });
  box.append(yes, no);
  item.querySelector(".actions").append(box);
  no.focus();
}

/** The list, one page at a time; `cursors` holds the cursor of every page up to the one shown. */
const links = {
  cursors: [null],
  next: null,
  /** Bumped by every reload: an answer that arrives after a newer reload started is dropped, not shown. */
  latest: 0,

  first() {
    this.cursors = [null];
    this.reload();
  },
  older() {
    if (!this.next) return;
    this.cursors.push(this.next);
    this.reload();
  },
  newer() {
    if (this.cursors.length > 1) this.cursors.pop();
    this.reload();
  },

  /** Shows the current page; `notice` says what just happened (read out by screen readers). */
  async reload(notice = "") {
    const ticket = ++this.latest;
    const list = $("links");
    const status = $("links-status");
    $("older-links").hidden = true;
    $("newer-links").hidden = true;
    if (!storedKey()) {
      list.replaceChildren();
      status.textContent = "Save your API key to see your links.";
      return;
    }
    const cursor = this.cursors[this.cursors.length - 1];
    const filter = filters.query();
    const query = `limit=${PAGE_SIZE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}${filter ? `&${filter}` : ""}`;
    const answer = await api("GET", `/v1/urls?${query}`);
    if (ticket !== this.latest) return;
    if (answer.status !== 200) {
      list.replaceChildren();
      const why = explain(answer);
      if (why.field === "filter") showError("filter", why.text);
      status.textContent = why.text;
      return;
    }
    const items = answer.body.items;
    if (items.length === 0 && this.cursors.length > 1) {
      this.cursors.pop();
      this.reload(notice);
      return;
    }
    this.next = answer.body.next_cursor;
    list.replaceChildren(...items.map(linkItem));
    let empty = "";
    if (items.length === 0) empty = filter ? "No links match this filter." : "No links yet: shorten one above.";
    status.textContent = [notice, empty].filter(Boolean).join(" ");
    $("older-links").hidden = !this.next;
    $("newer-links").hidden = this.cursors.length <= 1;
  },
};

// --------------------------------------------------------------- start

document.addEventListener("DOMContentLoaded", () => {
  $("key-form").addEventListener("submit", saveKey);
  $("forget-key").addEventListener("click", forgetKey);
  $("shorten-form").addEventListener("submit", shorten);
  $("copy-button").addEventListener("click", copyShortLink);
  $("refresh-links").addEventListener("click", () => links.reload());
  $("older-links").addEventListener("click", () => links.older());
  $("newer-links").addEventListener("click", () => links.newer());
  $("filter-form").addEventListener("submit", (event) => filters.fromForm(event));
  $("clear-filter").addEventListener("click", () => filters.clear());
  $("export-links").addEventListener("click", exportLinks);
  showKeyState();
  links.first();
});
