// snowlink's page: shortens through POST /v1/urls (on a chosen domain, with tags, a password, a visit limit,
// rules and A/B variants), shows the short link with its QR code, and lists the caller's links (filtered by tag
// and search, exported as CSV) with hits, a 30-day chart, hits per variant and where their clicks come from; a
// link's target, tags, rules and variants are edited in place (PATCH); one link at a time shows its visits live
// (a ticker on GET /v1/urls/{code}/events). Plain DOM, no library; text is only ever set through textContent.
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
    case "unknown_domain":
      return { field: "domain", text: "This domain is not served here (any more). Reload the page and pick another." };
    case "invalid_rules":
    case "invalid_variants":
      return { field: "form", text: routingMessage(message) || "Check the rules and variants." };
    default:
      if (answer.status === 0) {
        return { field: "form", text: "The shortener cannot be reached. Check your connection and try again." };
      }
      return { field: "form", text: message || `Something went wrong (HTTP ${answer.status}). Try again.` };
  }
}

const FIELDS = ["domain", "long-url", "alias", "expires-at", "redirect", "tags", "password", "max-hits"];

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
  domains.load().then(() => links.first());
}

function forgetKey() {
  localStorage.removeItem(KEY_STORAGE);
  showKeyState();
  domains.load().then(() => links.first());
  $("api-key").focus();
}

// ------------------------------------------------------------ domains

/** The domains links can live on (from GET /v1/domains) and the picker on the create form. */
const domains = {
  /** The default domain's host; null until known, and then every link names its domain in API paths. */
  defaultHost: null,

  async load() {
    const field = $("domain-field");
    const picker = $("domain");
    if (!storedKey()) {
      field.hidden = true;
      picker.replaceChildren();
      return;
    }
    const answer = await api("GET", "/v1/domains");
    if (answer.status !== 200 || !Array.isArray(answer.body.items)) {
      field.hidden = true;
      return;
    }
    const items = answer.body.items;
    const fallback = items.find((domain) => domain.default);
    this.defaultHost = fallback ? fallback.host : null;
    picker.replaceChildren(
      ...items.map((domain) => {
        const option = element("option", "", domain.default ? `${domain.host} (default)` : domain.host);
        option.value = domain.host;
        // defaultSelected, so the form's reset after a create picks the default again.
        option.defaultSelected = option.selected = domain.default;
        return option;
      }),
    );
    field.hidden = items.length < 2;
  },

  /** The host to create on, or null for the default domain. */
  picked() {
    const host = $("domain").value;
    return $("domain-field").hidden || !host || host === this.defaultHost ? null : host;
  },
};

/** A code-addressed API path for `link`: `/v1/urls/{code}{tail}`, with `?domain=` when the link is not on the
 * default domain (the API reads the default domain when it is absent). */
function linkPath(link, tail = "", params = {}) {
  const query = new URLSearchParams(params);
  if (link.domain && link.domain !== domains.defaultHost) query.set("domain", link.domain);
  const text = query.toString();
  return `/v1/urls/${encodeURIComponent(link.code)}${tail}${text ? `?${text}` : ""}`;
}

// ------------------------------------------------- rules and variants

/** The conditions a rule row offers, in the API's names, with how each is entered. */
const CONDITIONS = {
  device: { label: "Device is", choices: ["desktop", "mobile", "tablet"] },
  os: { label: "OS is", choices: ["ios", "android", "windows", "macos", "linux"] },
  language: { label: "Language is", placeholder: "de", normalise: (text) => text.toLowerCase() },
  country: { label: "Country is", placeholder: "DE", normalise: (text) => text.toUpperCase() },
  after: { label: "After", moment: true },
  before: { label: "Before", moment: true },
  query: { label: "Query parameter is", pair: true },
};
const MAX_RULES = 20;
const MAX_VARIANTS = 10;

let lastId = 0;
/** Ids for the rows' inputs, so every label names its input however rows are added and removed. */
const freshId = (stem) => `${stem}-${++lastId}`;

function button(className, text, label) {
  const made = element("button", className, text);
  made.type = "button";
  if (label) made.setAttribute("aria-label", label);
  return made;
}

function labelled(text, input) {
  const box = element("div", "field");
  const caption = element("label", "", text);
  caption.htmlFor = input.id;
  box.append(caption, input);
  return box;
}

/** An RFC 3339 time as a datetime-local input shows it (the person's own clock). */
function localInputTime(text) {
  const at = new Date(text);
  if (Number.isNaN(at.getTime())) return "";
  return new Date(at.getTime() - at.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

/** A fieldset of rows (class `{name}`) with its list (`{singular}-list`) and add button (`add-{singular}`). */
function rowSet(name, legend, addLabel, hint) {
  const singular = name.slice(0, -1);
  const set = element("fieldset", name);
  const list = element("ol", `${singular}-list`);
  const add = button(`secondary add-${singular}`, addLabel);
  set.append(element("legend", "", legend), element("p", "hint", hint), list, add);
  return [set, list, add];
}

/** Rows of rules and variants that can be added and removed; `link` (when editing) fills them. */
function routingEditor(link) {
  const box = element("div", "routing");

  const [rules, ruleList, addRule] = rowSet("rules", "Rules", "Add rule",
    "Send some visitors elsewhere: the first rule whose conditions all hold wins.");
  const [variants, variantList, addVariant] = rowSet("variants", "A/B variants", "Add variant",
    "2 to 10 targets; each visitor keeps one, picked by weight (1 to 1000).");
  box.append(rules, variants);

  const refresh = () => {
    addRule.hidden = ruleList.childElementCount >= MAX_RULES;
    addVariant.hidden = variantList.childElementCount >= MAX_VARIANTS;
  };
  const add = (list, row, focus) => {
    list.append(row);
    refresh();
    if (focus) row.querySelector("select, input").focus();
  };
  const removed = (addButton) => () => {
    refresh();
    addButton.focus();
  };
  addRule.addEventListener("click", () => add(ruleList, ruleRow(null, removed(addRule)), true));
  addVariant.addEventListener("click", () =>
    add(variantList, variantRow(null, removed(addVariant)), true),
  );
  for (const rule of (link && link.rules) || []) add(ruleList, ruleRow(rule, removed(addRule)));
  for (const variant of (link && link.variants) || []) {
    add(variantList, variantRow(variant, removed(addVariant)));
  }

  return {
    box,
    /** {rules, variants} (each an array, or null when it has no rows), or {error} in words. */
    read() {
      const readRules = [...ruleList.children].map(readRule);
      const readVariants = [...variantList.children].map(readVariant);
      const failed = [...readRules, ...readVariants].find((row) => row.error);
      if (failed) return { error: failed.error };
      return {
        rules: readRules.length ? readRules.map((row) => row.rule) : null,
        variants: readVariants.length ? readVariants.map((row) => row.variant) : null,
      };
    },
    clear() {
      ruleList.replaceChildren();
      variantList.replaceChildren();
      refresh();
    },
  };
}

/** Where a rule or variant sends visitors (`from`'s long_url when editing). */
function targetInput(className, placeholder, from) {
  const input = element("input", className);
  input.id = freshId(className);
  input.type = "url";
  input.placeholder = placeholder;
  input.value = (from && from.long_url) || "";
  return input;
}

function removeButton(row, className, text, onRemove) {
  const remove = button(`secondary ${className}`, text);
  remove.addEventListener("click", () => {
    row.remove();
    onRemove();
  });
  return remove;
}

/** One rule: its conditions (one a line, "and" adds another), where it sends visitors, and a remove button. */
function ruleRow(rule, onRemove) {
  const row = element("li", "rule");
  const conditions = element("ul", "conditions");
  const lines = [];
  for (const [kind, value] of Object.entries((rule && rule.when) || {})) {
    if (kind === "query") {
      for (const pair of Object.entries(value || {})) lines.push(conditionLine("query", pair));
    } else if (Object.hasOwn(CONDITIONS, kind)) {
      lines.push(conditionLine(kind, value));
    }
  }
  conditions.append(...(lines.length ? lines : [conditionLine("device")]));
  const and = button("secondary add-condition", "And…", "Add a condition to this rule");
  and.addEventListener("click", () => {
    const used = new Set([...conditions.querySelectorAll(".condition-kind")].map((select) => select.value));
    const kind = Object.keys(CONDITIONS).find((name) => !used.has(name)) || "query";
    const line = conditionLine(kind);
    conditions.append(line);
    line.querySelector(".condition-kind").focus();
  });
  const target = targetInput("rule-url", "https://example.com/for-them", rule);
  const remove = removeButton(row, "remove-rule", "Remove rule", onRemove);
  const actions = element("div", "actions");
  actions.append(and, remove);
  row.append(conditions, labelled("Send them to", target), actions);
  return row;
}

/** One condition of a rule: a kind and its value(s); changing the kind changes how the value is entered. */
function conditionLine(kind, value) {
  const line = element("li", "condition");
  const kindPicker = element("select", "condition-kind");
  kindPicker.setAttribute("aria-label", "Condition");
  for (const [name, condition] of Object.entries(CONDITIONS)) {
    const option = element("option", "", condition.label);
    option.value = name;
    kindPicker.append(option);
  }
  kindPicker.value = kind;
  const slot = element("span", "condition-value");
  slot.replaceChildren(...conditionInputs(kind, value));
  kindPicker.addEventListener("change", () => slot.replaceChildren(...conditionInputs(kindPicker.value)));
  const remove = button("secondary remove-condition", "×", "Remove this condition");
  remove.addEventListener("click", () => line.remove());
  line.append(kindPicker, slot, remove);
  return line;
}

function conditionInputs(kind, value) {
  const condition = CONDITIONS[kind];
  if (condition.pair) {
    const [name, wanted] = value || ["", ""];
    const nameInput = element("input", "query-name");
    nameInput.setAttribute("aria-label", "Query parameter name");
    nameInput.placeholder = "utm_source";
    nameInput.value = name;
    const valueInput = element("input", "query-value");
    valueInput.setAttribute("aria-label", "Query parameter value");
    valueInput.placeholder = "newsletter";
    valueInput.value = wanted;
    return [nameInput, element("span", "", "="), valueInput];
  }
  if (condition.choices) {
    const picker = element("select", "condition-input");
    picker.setAttribute("aria-label", condition.label);
    for (const choice of condition.choices) picker.append(new Option(choice, choice));
    if (value) picker.value = value;
    return [picker];
  }
  const input = element("input", "condition-input");
  input.setAttribute("aria-label", condition.label);
  input.autocomplete = "off";
  input.spellcheck = false;
  if (condition.moment) {
    input.type = "datetime-local";
    input.value = value ? localInputTime(value) : "";
  } else {
    input.placeholder = condition.placeholder;
    input.value = value || "";
  }
  return [input];
}

/** A rule row as the API takes it, or {error} naming the rule the way the page numbers it. */
function readRule(row, index) {
  const name = `Rule ${index + 1}`;
  const when = {};
  const query = new Map();
  const lines = row.querySelectorAll(".condition");
  if (lines.length === 0) return { error: `${name} needs at least one condition.` };
  for (const line of lines) {
    const kind = line.querySelector(".condition-kind").value;
    const condition = CONDITIONS[kind];
    if (condition.pair) {
      const parameter = line.querySelector(".query-name").value.trim();
      if (!parameter) return { error: `${name}: name the query parameter.` };
      if (query.has(parameter)) return { error: `${name} asks for "${parameter}" twice: keep one.` };
      query.set(parameter, line.querySelector(".query-value").value);
      continue;
    }
    if (kind in when) return { error: `${name} has two "${condition.label}" conditions: keep one.` };
    const text = line.querySelector(".condition-input").value.trim();
    if (!text) return { error: `${name}: fill in "${condition.label}".` };
    if (condition.moment) {
      const at = new Date(text);
      if (Number.isNaN(at.getTime())) return { error: `${name}: "${condition.label}" is not a valid date and time.` };
      when[kind] = at.toISOString();
    } else {
      when[kind] = condition.normalise ? condition.normalise(text) : text;
    }
  }
  // fromEntries defines properties, so a parameter named like an Object built-in stays a plain key.
  if (query.size) when.query = Object.fromEntries(query);
  const longUrl = row.querySelector(".rule-url").value.trim();
  if (!longUrl) return { error: `${name}: enter where it sends visitors.` };
  return { rule: { when, long_url: longUrl } };
}

/** One variant: a target and its weight. */
function variantRow(variant, onRemove) {
  const row = element("li", "variant");
  const target = targetInput("variant-url", "https://example.com/landing-b", variant);
  const weight = element("input", "variant-weight");
  weight.id = freshId("variant-weight");
  weight.type = "number";
  weight.min = "1";
  weight.max = "1000";
  weight.step = "1";
  weight.inputMode = "numeric";
  weight.value = variant ? String(variant.weight) : "50";
  const remove = removeButton(row, "remove-variant", "Remove variant", onRemove);
  const fields = element("div", "row");
  fields.append(labelled("Target", target), labelled("Weight", weight));
  row.append(fields, remove);
  return row;
}

function readVariant(row, index) {
  const name = `Variant ${index + 1}`;
  const longUrl = row.querySelector(".variant-url").value.trim();
  if (!longUrl) return { error: `${name}: enter its target.` };
  const weight = row.querySelector(".variant-weight").value.trim();
  if (!/^[0-9]+$/.test(weight) || Number(weight) < 1 || Number(weight) > 1000) {
    return { error: `${name}: a weight is a whole number from 1 to 1000.` };
  }
  return { variant: { long_url: longUrl, weight: Number(weight) } };
}

/** The API's message for bad rules or variants in the page's words: its 0-based `rules[1].when.device: …` reads
 * "Rule 2, device: …", as the page numbers its rows. */
function routingMessage(message) {
  return message.replace(/\b(rule|variant)s\[(\d+)\](?:\.when)?(\.)?/g, (_, kind, index, dot) => {
    const name = `${kind[0].toUpperCase()}${kind.slice(1)} ${Number(index) + 1}`;
    return dot ? `${name}, ` : name;
  });
}

/** Hits per variant (from /stats), beside the chart of a link that has variants. */
async function showVariantHits(slot, link) {
  const answer = await api("GET", linkPath(link, "/stats", { days: CHART_DAYS }));
  if (answer.status !== 200 || !Array.isArray(answer.body.variants)) {
    slot.replaceChildren(element("p", "hint", "Hits per variant are unavailable right now."));
    return;
  }
  const rows = answer.body.variants.map((variant) => ({
    name: variant.long_url,
    note: `weight ${variant.weight}`,
    hits: variant.hits,
  }));
  const title = `Hits per variant, last ${answer.body.days || CHART_DAYS} days`;
  slot.replaceChildren(breakdown(title, "variant-hits", rows, { listZeros: true }));
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
  const domain = domains.picked();
  if (domain) request.domain = domain;
  const routing = createRouting.read();
  if (routing.error) return { error: { field: "form", text: routing.error } };
  // Only when rows exist: a link without rules or variants keeps its one-branch path in the redirect.
  if (routing.rules) request.rules = routing.rules;
  if (routing.variants) request.variants = routing.variants;
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
      createRouting.clear();
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
  showImage($("result-qr"), await apiImage(linkPath(link, "/qr", { size: 320 })));
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
  const parts = [];
  if (link.domain) parts.push(`on ${link.domain}`);
  parts.push(`created ${new Date(link.created_at).toLocaleString()}`);
  if (link.expires_at) parts.push(`expires ${new Date(link.expires_at).toLocaleString()}`);
  parts.push(`${link.redirect} redirect`);
  if (link.password_protected) parts.push("password-protected");
  if (link.max_hits !== null && link.max_hits !== undefined) parts.push(`limit ${link.max_hits} visits`);
  if (link.rules && link.rules.length) parts.push(`${link.rules.length} ${link.rules.length === 1 ? "rule" : "rules"}`);
  if (link.variants && link.variants.length) parts.push(`${link.variants.length} variants`);
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
  if (link.domain) item.dataset.domain = link.domain;
  const main = element("div", "link-main");
  const anchor = element("a", "short", link.short_url);
  anchor.href = link.short_url;
  main.append(anchor);
  main.append(element("p", "long", link.long_url));
  main.append(tagButtons(link));
  main.append(element("p", "link-meta", describe(link)));
  const chartSlot = element("div", "chart-slot");
  const variantSlot = element("div", "variant-slot");
  variantSlot.hidden = !(link.variants && link.variants.length);
  const sources = sourcesView(link);
  const insight = element("div", "insight");
  insight.append(chartSlot, variantSlot, sources, liveView(link));
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

  api("GET", linkPath(link, "/hits", { days: CHART_DAYS })).then((answer) => {
    if (answer.status === 200) chartSlot.append(chart(answer.body), chartCaption(answer.body));
    else chartSlot.append(element("p", "hint", "Hits per day are unavailable right now."));
  });
  if (!variantSlot.hidden) showVariantHits(variantSlot, link);
  apiImage(linkPath(link, "/qr", { size: 192 })).then((url) => showImage(qr, url));
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
    const answer = await api("GET", linkPath(link, "/stats", { days: CHART_DAYS }));
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

/** A small table of names (each with an optional note) and hits, with a bar for each row's share; `listZeros` lists
 * rows before any hit. */
function breakdown(title, className, rows, { listZeros = false } = {}) {
  const table = element("table", `breakdown ${className}`);
  table.append(element("caption", "", title));
  const total = rows.reduce((sum, row) => sum + row.hits, 0);
  if (rows.length === 0 || (total === 0 && !listZeros)) {
    const empty = element("tr");
    empty.append(element("td", "hint", "none yet"));
    table.append(empty);
    return table;
  }
  for (const row of rows) {
    const line = element("tr");
    line.dataset.name = row.name;
    const name = element("th", "", row.name);
    if (row.note) name.append(element("span", "note", row.note));
    line.append(name);
    line.append(element("td", "count", String(row.hits)));
    const share = element("td", "share");
    const meter = element("meter");
    meter.min = 0;
    meter.max = Math.max(total, 1);
    meter.value = row.hits;
    meter.setAttribute("aria-label", `${row.name}: ${Math.round((row.hits / Math.max(total, 1)) * 100)}%`);
    share.append(meter);
    line.append(share);
    table.append(line);
  }
  return table;
}

// ------------------------------------------------------ live visits

/** Rows the ticker keeps: older ones are dropped, so a busy link cannot grow the page. */
const LIVE_ROWS = 50;
/** A message longer than this ends the connection (the stream's events are a few hundred bytes). */
const LIVE_MESSAGE_LIMIT = 64 * 1024;
/** Waits before reconnecting: doubling from the first to the last, each with up to half again of jitter. */
const LIVE_BACKOFF_FIRST_MS = 1000;
const LIVE_BACKOFF_LAST_MS = 30000;
/** Answers that another try would only repeat: shown, not retried. */
const LIVE_FINAL = [401, 403, 404, 429];

/** A disclosure beside the chart whose open state is a stream of the link's visits (GET …/events). The page
 * holds at most one: opening another link's closes this one, so one page never counts twice against the key's
 * few streams. EventSource cannot send the key in a header, so the stream is read from fetch() by hand. */
function liveView(link) {
  const details = element("details", "live");
  details.append(element("summary", "", "Live visits"));
  const state = element("span", "live-state");
  state.setAttribute("role", "status");
  const count = element("span", "live-count");
  const summary = element("p", "live-head");
  summary.append(state, " · ", count);
  const problem = element("p", "error live-error");
  problem.hidden = true;
  const table = element("table", "live-visits");
  table.append(element("caption", "", "Newest first"));
  const columns = element("tr");
  for (const name of ["Time", "Device", "OS", "Country", "Referrer", "Variant"]) {
    const cell = element("th", "", name);
    cell.scope = "col";
    columns.append(cell);
  }
  const header = element("thead");
  header.append(columns);
  const rows = element("tbody");
  table.append(header, rows);
  details.append(summary, problem, table);
  const view = { details, state, count, problem, rows, link };
  details.addEventListener("toggle", () => {
    if (details.open) live.open(view);
    else live.close(view);
  });
  return details;
}

/** The one stream the page may hold, and the view it feeds. */
const live = {
  /** {view, controller, visits} while a view is open. */
  current: null,

  open(view) {
    if (this.current && this.current.view === view) return;
    this.close();
    const session = { view, controller: new AbortController(), visits: 0 };
    this.current = session;
    view.rows.replaceChildren();
    hideMessage(view.problem);
    showVisits(session);
    follow(session);
  },

  /** Ends the stream; with `view`, only when that view is the one holding it. */
  close(view) {
    const session = this.current;
    if (!session || (view && session.view !== view)) return;
    this.current = null;
    session.controller.abort();
    showLiveState(session.view, "closed");
    // Another link's view opened: fold this one, so the page says which ticker runs.
    if (session.view.details.open) session.view.details.open = false;
  },
};

/** Connects, reads, and reconnects with backoff until the session is aborted or an answer is final. */
async function follow(session) {
  const { signal } = session.controller;
  for (let attempt = 0; !signal.aborted; attempt += 1) {
    showLiveState(session.view, attempt === 0 ? "connecting" : "reconnecting");
    const response = await fetch(linkPath(session.view.link, "/events"), {
      headers: { Authorization: `Bearer ${storedKey()}`, Accept: "text/event-stream" },
      cache: "no-store",
      signal,
    }).catch(() => null);
    if (signal.aborted) return;
    if (response && LIVE_FINAL.includes(response.status)) {
      await refuse(session, response);
      return;
    }
    if (response && response.ok && response.body) {
      attempt = 0;
      showLiveState(session.view, "live");
      await readEvents(response.body, (message) => onLiveMessage(session, message)).catch(() => null);
      if (signal.aborted) return;
    } else if (response && response.body) {
      response.body.cancel().catch(() => null);
    }
    showLiveState(session.view, "reconnecting");
    await pause(backoff(attempt), signal);
  }
}

/** Resolves after `ms`, or as soon as `signal` aborts. */
function pause(ms, signal) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

function backoff(attempt) {
  const base = Math.min(LIVE_BACKOFF_LAST_MS, LIVE_BACKOFF_FIRST_MS * 2 ** Math.min(attempt, 10));
  return base + Math.random() * base * 0.5;
}

/** Shows why the stream was refused and stops. */
async function refuse(session, response) {
  let body = null;
  if ((response.headers.get("content-type") || "").includes("json")) {
    body = await response.json().catch(() => null);
  }
  const answer = { status: response.status, body, headers: response.headers };
  const text =
    response.status === 429
      ? "Too many live views are open with this key (at most 5). Close one, then open this again."
      : explain(answer).text;
  showMessage(session.view.problem, text);
  showLiveState(session.view, "stopped");
}

/** Reads Server-Sent Events from `body`, calling `onMessage({event, id, data})` for each message. */
async function readEvents(body, onMessage) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  let message = { event: "message", id: "", data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    pending += value;
    let end;
    while ((end = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, end).replace(/\r$/, "");
      pending = pending.slice(end + 1);
      if (line === "") {
        if (message.data.length) onMessage({ event: message.event, id: message.id, data: message.data.join("\n") });
        message = { event: "message", id: "", data: [] };
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") message.event = text;
      else if (field === "id") message.id = text;
      else if (field === "data") message.data.push(text);
    }
    if (pending.length > LIVE_MESSAGE_LIMIT || message.data.join("").length > LIVE_MESSAGE_LIMIT) {
      reader.cancel().catch(() => null);
      throw new Error("an event too large");
    }
  }
}

function onLiveMessage(session, message) {
  if (message.event !== "click" || live.current !== session) return;
  let event;
  try {
    event = JSON.parse(message.data);
  } catch {
    return;
  }
  const visit = event && typeof event.data === "object" && event.data;
  if (!visit) return;
  const rows = session.view.rows;
  const id = String(event.id || message.id);
  // Delivery is at least once: an event seen twice is shown once.
  if (id && [...rows.children].some((row) => row.dataset.id === id)) return;
  rows.prepend(visitRow(id, visit));
  while (rows.childElementCount > LIVE_ROWS) rows.lastElementChild.remove();
  session.visits += 1;
  showVisits(session);
}

/** One visit as a table row; every value is the event's text, set through textContent. */
function visitRow(id, visit) {
  const row = element("tr");
  row.dataset.id = id;
  const at = new Date(visit.at);
  const time = element("time", "", Number.isNaN(at.getTime()) ? "" : at.toLocaleTimeString());
  if (!Number.isNaN(at.getTime())) time.dateTime = at.toISOString();
  const when = element("td", "live-time");
  when.append(time);
  row.append(when);
  const variant = Number.isInteger(visit.variant) ? String(visit.variant + 1) : "";
  const cells = [
    ["live-device", visit.bot ? "bot" : visit.device],
    ["live-os", visit.os],
    ["live-country", visit.country],
    ["live-referrer", visit.referrer_domain],
    ["live-variant", variant],
  ];
  for (const [className, text] of cells) row.append(element("td", className, text ? String(text) : "—"));
  return row;
}

function showVisits(session) {
  const visits = session.visits;
  session.view.count.dataset.count = String(visits);
  session.view.count.textContent = `${visits} ${visits === 1 ? "visit" : "visits"} since opened`;
}

const LIVE_STATES = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", closed: "Closed", stopped: "Stopped" };

function showLiveState(view, state) {
  view.state.dataset.state = state;
  view.state.textContent = LIVE_STATES[state];
}

// ------------------------------------------------------- edit in place

/** Replaces the row's target with a form for the target, tags, rules and variants; saved through PATCH. */
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
  const routing = routingEditor(link);
  form.append(urlField.box, tagsField.box, routing.box, buttons, problem);
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
    const rows = routing.read();
    if (rows.error) {
      showMessage(problem, rows.error);
      return;
    }
    // Rows are sent as they stand; no rows left where the link had some is `null`, which clears them.
    for (const field of ["rules", "variants"]) {
      if (rows[field] || (link[field] && link[field].length)) change[field] = rows[field];
    }
    save.disabled = true;
    const answer = await api("PATCH", linkPath(link), change);
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
    const answer = await api("DELETE", linkPath(link));
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
    // The rows are about to be rebuilt: a ticker in one of them would go on streaming, unseen.
    live.close();
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

/** The rules and variants rows of the create form. */
const createRouting = routingEditor(null);

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
  $("create-routing").append(createRouting.box);
  showKeyState();
  window.addEventListener("pagehide", () => live.close());
  // Domains first: the list's API paths name a link's domain only when it is not the default one.
  domains.load().then(() => links.first());
});
