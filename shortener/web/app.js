// snowlink's page: shortens through POST /v1/urls, shows the short link with its QR code, and lists the caller's
// links with hits and a 30-day chart. Plain DOM, no library; text is only ever set through textContent.
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

const FIELDS = ["long-url", "alias", "expires-at", "redirect"];

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
  if (field === "form") {
    showMessage($("form-error"), text);
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
  if (!request.long_url) return { error: { field: "long-url", text: "Paste the long link to shorten." } };
  return { request };
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
  parts.push(`${link.hits} ${link.hits === 1 ? "hit" : "hits"} in all`);
  return parts.join(" · ");
}

function linkItem(link) {
  const item = element("li", "link");
  item.dataset.code = link.code;
  const main = element("div", "link-main");
  const anchor = element("a", "short", link.short_url);
  anchor.href = link.short_url;
  main.append(anchor);
  main.append(element("p", "long", link.long_url));
  main.append(element("p", "link-meta", describe(link)));
  const chartSlot = element("div", "chart-slot");
  main.append(chartSlot);
  const actions = element("div", "actions");
  const remove = element("button", "secondary delete", "Delete");
  remove.type = "button";
  remove.setAttribute("aria-label", `Delete ${link.short_url}`);
  remove.addEventListener("click", () => confirmDelete(item, link, remove));
  actions.append(remove);
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
    const query = `limit=${PAGE_SIZE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const answer = await api("GET", `/v1/urls?${query}`);
    if (ticket !== this.latest) return;
    if (answer.status !== 200) {
      list.replaceChildren();
      status.textContent = explain(answer).text;
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
    const empty = items.length === 0 ? "No links yet: shorten one above." : "";
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
  showKeyState();
  links.first();
});
