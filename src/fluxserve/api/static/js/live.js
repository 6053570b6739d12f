// Follow one task live over the socket at /v1 (Wiro's protocol); poll Task/Detail if it fails.
import { api } from "./api.js";

export const TERMINAL = new Set(["task_postprocess_end", "task_cancel"]);
const STATUSES = new Set([
  "task_queue", "task_accept", "task_assign", "task_preprocess_start", "task_preprocess_end", "task_start",
  "task_output", "task_error", "task_error_full", "task_end", "task_postprocess_start", "task_postprocess_end",
  "task_cancel",
]);

/** Progress from a frame's message or a Detail's debugoutput line, or null. */
export function progressOf(message) {
  let value = message;
  if (typeof value === "string") {
    const line = value.trim().split("\n").pop();
    if (!line.startsWith("{")) return null;
    try {
      value = JSON.parse(line);
    } catch {
      return null;
    }
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) return null;
  if (value.stepCurrent === undefined && value.percentage === undefined) return null;
  return value;
}

/**
 * Calls `onStatus(status)` for each status, `onProgress(progress)` for each progress frame and
 * resolves once the task has ended (the caller then reads Task/Detail for outputs and errors).
 * `stop()` on the returned handle gives up following.
 */
export function follow(credentials, taskid, token, { onStatus, onProgress }) {
  let stopped = false;
  let socket = null;
  let poller = null;
  let finish;
  const done = new Promise((resolve) => { finish = resolve; });
  const end = () => {
    if (stopped) return;
    stopped = true;
    clearTimeout(poller);
    if (socket && socket.readyState <= 1) socket.close();
    finish();
  };

  const poll = async () => {
    if (stopped) return;
    try {
      const task = (await api.detail(credentials, taskid)).tasklist[0];
      onStatus(task.status);
      const progress = progressOf(task.debugoutput);
      if (progress && !TERMINAL.has(task.status)) onProgress(progress);
      if (TERMINAL.has(task.status)) return end();
    } catch {
      /* keep trying: a restarting server answers again soon */
    }
    poller = setTimeout(poll, 1000);
  };

  try {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${scheme}//${location.host}/v1`);
  } catch {
    poll();
    return { done, stop: end };
  }
  socket.addEventListener("open", () => socket.send(JSON.stringify({ type: "task_info", tasktoken: token })));
  socket.addEventListener("message", (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!frame || typeof frame.type !== "string") return;
    if (frame.result === false || frame.type === "error") {
      socket.close();
      return;
    }
    const progress = frame.type === "task_output" ? progressOf(frame.message) : null;
    if (progress) onProgress(progress);
    else if (STATUSES.has(frame.type)) onStatus(frame.type);
    // Any other frame (a connection acknowledgement, a preview) carries nothing to show here.
    if (TERMINAL.has(frame.type)) end();
  });
  socket.addEventListener("close", () => {
    if (!stopped) poll(); // closed before the end (error frame, restart): Detail tells the rest
  });
  return { done, stop: end };
}
