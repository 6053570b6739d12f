// The public API, signed in the browser. Credentials live in sessionStorage (this tab only).
import { hmacSha256Hex } from "./hmac.js";

const STORAGE_KEY = "fluxserve.credentials";

export function loadCredentials() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "null");
    if (saved && typeof saved.apiKey === "string" && saved.apiKey) return saved;
  } catch {
    /* a damaged entry counts as none */
  }
  return null;
}

export function saveCredentials(apiKey, apiSecret) {
  const credentials = { apiKey: apiKey.trim(), apiSecret: apiSecret.trim() };
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(credentials));
  return credentials;
}

export function forgetCredentials() {
  sessionStorage.removeItem(STORAGE_KEY);
}

/** The headers any client sends: x-api-key, and for signed projects x-nonce + x-signature. */
export async function authHeaders(credentials) {
  const headers = { "x-api-key": credentials.apiKey };
  if (credentials.apiSecret) {
    const nonce = String(Math.floor(Date.now() / 1000));
    headers["x-nonce"] = nonce;
    headers["x-signature"] = await hmacSha256Hex(credentials.apiKey, credentials.apiSecret + nonce);
  }
  return headers;
}

export class AuthError extends Error {}

/** An answer with `result: false`: its `errors` ({code, message}) are kept for the form. */
export class ApiError extends Error {
  constructor(errors, status) {
    super(errors.map((e) => e.message).join("\n") || `HTTP ${status}`);
    this.errors = errors;
    this.status = status;
  }
}

/**
 * POST `path` with `body` (a plain object → JSON, a FormData → multipart) and return the answer.
 * Wiro answers most errors with HTTP 200 and `result: false`, some with 4xx; both become ApiError.
 */
export async function call(credentials, path, body = {}) {
  const headers = await authHeaders(credentials);
  const init = { method: "POST", headers };
  if (body instanceof FormData) {
    init.body = body;
  } else {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let answer;
  try {
    answer = await response.json();
  } catch {
    throw new ApiError([{ code: 99, message: `The server answered HTTP ${response.status} without JSON.` }], response.status);
  }
  if (response.status === 401) {
    throw new AuthError((answer.errors || []).map((e) => e.message).join(" ") || "Not authorised.");
  }
  if (answer.result !== true) {
    const errors = Array.isArray(answer.errors) && answer.errors.length
      ? answer.errors
      : [{ code: 99, message: `The request failed (HTTP ${response.status}).` }];
    throw new ApiError(errors, response.status);
  }
  return answer;
}

export const api = {
  toolList: (c) => call(c, "/v1/Tool/List", {}),
  toolDetail: (c, owner, project) => call(c, "/v1/Tool/Detail", { slugowner: owner, slugproject: project }),
  run: (c, owner, project, body) => call(c, `/v1/Run/${encodeURIComponent(owner)}/${encodeURIComponent(project)}`, body),
  detail: (c, taskid) => call(c, "/v1/Task/Detail", { taskid }),
  list: (c, start = 0, limit = 20) => call(c, "/v1/Task/List", { start: String(start), limit: String(limit) }),
  kill: (c, taskid) => call(c, "/v1/Task/Kill", { taskid }),
  cancel: (c, taskid) => call(c, "/v1/Task/Cancel", { taskid }),
  upload: (c, form) => call(c, "/v1/File/Upload", form),
};
