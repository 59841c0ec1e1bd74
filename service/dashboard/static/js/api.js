// The /v1 API as the pages use it: JSON requests with the tab's API key, one error type.
//
// With API keys configured the server answers 401; the page then asks for a key once (a
// modal form), keeps it in sessionStorage for the tab and repeats the request.

import { h } from "./dom.js";

const KEY_STORAGE = "dropnet.apiKey";

/** An error answer of the API: {error: {code, message, details: [{path, message}]}}. */
export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || `http_${status}`;
    this.details = Array.isArray(error.details) ? error.details : [];
  }
}

export async function readError(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: the status alone says what went wrong
  }
  return new ApiError(response.status, body);
}

let keyRequest = null;

/** Resolves once the user has entered a key; concurrent 401s share one dialog. */
function askForKey(reason) {
  if (!keyRequest) {
    keyRequest = new Promise((resolve) => {
      const input = h("input", { type: "password", name: "api-key", autocomplete: "off",
                                 required: true, "aria-label": "API key" });
      const dialog = h("dialog", { class: "key-dialog" },
        h("form", { onsubmit: (event) => {
          event.preventDefault();
          sessionStorage.setItem(KEY_STORAGE, input.value.trim());
          dialog.close();
          dialog.remove();
          keyRequest = null;
          resolve();
        } },
          h("h2", { text: "API key" }),
          h("p", { class: "muted", text: reason }),
          input,
          h("p", { class: "muted small",
                   text: "Kept in this tab only (sessionStorage) and sent as a Bearer token." }),
          h("button", { type: "submit", class: "primary", text: "Use key" })));
      document.body.append(dialog);
      dialog.showModal();
      input.focus();
    });
  }
  return keyRequest;
}

/** fetch() with `Authorization: Bearer <key>`; asks for a key and retries on 401. */
export async function authorizedFetch(path, init = {}) {
  for (;;) {
    const headers = new Headers(init.headers);
    const key = sessionStorage.getItem(KEY_STORAGE);
    if (key) headers.set("Authorization", `Bearer ${key}`);
    const response = await fetch(path, { ...init, headers });
    if (response.status !== 401) return response;
    const error = await readError(response);
    sessionStorage.removeItem(KEY_STORAGE);
    await askForKey(key ? `That key was refused: ${error.message}`
                        : "This dropnet service needs an API key.");
  }
}

async function json(path, init) {
  const response = await authorizedFetch(path, init);
  if (!response.ok) throw await readError(response);
  return response.json();
}

export function getJSON(path, { signal } = {}) {
  return json(path, { signal, cache: "no-store" });
}

export function postJSON(path, body) {
  return json(path, { method: "POST", body: JSON.stringify(body),
                      headers: { "Content-Type": "application/json" } });
}

