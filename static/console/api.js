// What the newsroom console and the replay share (issue 10): the session, one API call with
// its RFC 9457 error shape, the sign-in form, and what the server says it can do.
//
// The token is posted once to /api/session, which keeps it in an HttpOnly cookie that no
// script here can read; it is never put in a URL or in storage.

// An answer that was not 2xx: `problem` is the RFC 9457 body (detail, errors[] of
// {field, message}, type), `status` the HTTP status (0: the server was not reached).
export class ApiError extends Error {
  constructor(message, status, problem) {
    super(message);
    this.status = status;
    this.problem = problem || {};
  }
  // The problem's type, last segment ("entry-locked"), to tell errors apart by kind.
  get code() { return String(this.problem.type || "").split("/").pop(); }
}

function unreachable() {
  return new ApiError("The server cannot be reached. Nothing was lost: try again.", 0, {});
}

async function failure(response) {
  const text = await response.text();
  let problem = {};
  try { problem = text ? JSON.parse(text) : {}; } catch (_) { problem = {}; }
  return new ApiError(problem.detail || response.statusText || "Error " + response.status,
                      response.status, problem);
}

// One API call with the session cookie (same origin; the server refuses it from other
// sites). JSON in, JSON out (null for 204); a failure throws an ApiError.
export async function api(method, path, body, headers) {
  const init = { method, headers: Object.assign({}, headers || {}), credentials: "same-origin" };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try { response = await fetch(path, init); } catch (_) { throw unreachable(); }
  if (!response.ok) throw await failure(response);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

// A request that outlives the page (sent on pagehide): no answer is awaited.
export function farewell(method, path) {
  fetch(path, { method, credentials: "same-origin", keepalive: true }).catch(() => {});
}

// A GET of a page's HTML (the replay's frames), with the same errors as api().
export async function fetchText(path) {
  let response;
  try { response = await fetch(path, { credentials: "same-origin" }); } catch (_) { throw unreachable(); }
  if (!response.ok) throw await failure(response);
  return response.text();
}

// Shows an error next to a form's fields, in plain words, and marks each field the problem
// names (`errors[].field`, e.g. "image.url" is the input named "image.url"). null clears.
export function showError(form, error) {
  const out = form.querySelector(".error");
  form.querySelectorAll("[aria-invalid]").forEach((f) => f.removeAttribute("aria-invalid"));
  if (!error) { out.textContent = ""; return; }
  const lines = [error.message];
  for (const fe of (error.problem && error.problem.errors) || []) {
    lines.push(fe.field + ": " + fe.message);
    const field = form.querySelector('[name="' + CSS.escape(fe.field) + '"]');
    if (!field) continue;
    field.setAttribute("aria-invalid", "true");
    const folded = field.closest("details"); // a field folded away is shown with its error
    if (folded) folded.open = true;
  }
  out.textContent = lines.join(" · ");
}

// A form's filled fields as the API's JSON: "image.url" goes to {image: {url}}; empty
// fields are left out; checkboxes are true when checked, left out when not.
export function values(form) {
  const data = {};
  form.querySelectorAll("input, textarea, select").forEach((f) => {
    if (!f.name || f.dataset.local !== undefined) return; // data-local: the page's own
    if ((f.type === "radio" || f.type === "checkbox") && !f.checked) return;
    const value = f.type === "checkbox" ? true : f.value.trim();
    if (value === "") return;
    const parts = f.name.split(".");
    if (parts.length === 2) {
      data[parts[0]] = data[parts[0]] || {};
      data[parts[0]][parts[1]] = value;
    } else data[f.name] = value;
  });
  return data;
}

// -- the session ----------------------------------------------------------------------------

// Who this browser is signed in as: {signed_in, name, role, display_name?}.
export function session() { return api("GET", "/api/session"); }

export async function signOut() {
  await api("DELETE", "/api/session");
  location.reload();
}

// The sign-in form (_signin.html): hidden until we know nobody is signed in. `opened(who)`
// runs once someone is, on load or after signing in; if it fails (a reporter in the
// replay: 403), the form comes back with the reason.
export function signIn(form, opened) {
  // Tokens were kept in sessionStorage before the cookie: none may linger there.
  sessionStorage.removeItem("liveblog-token");
  async function start() {
    try {
      const who = await session();
      if (!who.signed_in) { form.hidden = false; return; }
      await opened(who);
      form.hidden = true;
    } catch (error) {
      form.hidden = false;
      showError(form, error);
    }
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const field = form.querySelector("[name=token]");
    try {
      await api("POST", "/api/session", { token: field.value.trim() });
    } catch (error) { showError(form, error); return; }
    field.value = "";
    showError(form, null);
    start();
  });
  return start();
}

// -- what the server can do -----------------------------------------------------------------

// The server's OpenAPI document says which operations exist and what they take, so a
// console newer than its server hides what the server cannot do yet, without asking an
// endpoint that is not there (each refusal would be an error in the browser's console).
let described = null;
export function features() {
  described = described || api("GET", "/openapi.json").then((doc) => new Features(doc), () => new Features(null));
  return described;
}

class Features {
  constructor(doc) { this.doc = doc || { paths: {}, components: { schemas: {} } }; }
  has(method, path) {
    const ops = this.doc.paths[path];
    return Boolean(ops && ops[method.toLowerCase()]);
  }
  // The top-level fields of an operation's JSON body (empty when it has none).
  takes(method, path) {
    const op = this.has(method, path) && this.doc.paths[path][method.toLowerCase()];
    const content = op && op.requestBody && op.requestBody.content["application/json"];
    return this.fields(content && content.schema);
  }
  fields(schema) {
    if (!schema) return [];
    if (schema.$ref) schema = this.doc.components.schemas[schema.$ref.split("/").pop()] || {};
    return Object.keys(schema.properties || {});
  }
}

// -- times ----------------------------------------------------------------------------------

// 24-hour, as the reader page tells times (live.js).
const hm = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const dayHm = new Intl.DateTimeFormat(undefined, {
  weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });

// "14:32" today, "Tue 3 Jun, 14:32" another day: in the browser's own zone.
export function localTime(iso) {
  const when = new Date(iso);
  return when.toDateString() === new Date().toDateString() ? hm.format(when) : dayHm.format(when);
}

// A datetime-local value ("2025-06-03T14:30") as ISO 8601 with the browser's offset
// ("2025-06-03T14:30:00+03:00"): the time the editor meant, wherever the server is.
export function isoWithOffset(local) {
  const when = new Date(local);
  if (Number.isNaN(when.getTime())) return null;
  const minutes = -when.getTimezoneOffset();
  const sign = minutes >= 0 ? "+" : "-";
  const pad = (n) => String(Math.floor(Math.abs(n))).padStart(2, "0");
  return local.slice(0, 16) + ":" + pad(when.getSeconds()) + sign + pad(minutes / 60) + ":" + pad(minutes % 60);
}

// An ISO time as a datetime-local value, in the browser's zone (to prefill a reschedule).
export function localInput(iso) {
  const when = new Date(iso);
  const shifted = new Date(when.getTime() - when.getTimezoneOffset() * 60000);
  return shifted.toISOString().slice(0, 16);
}
