// The task panel: status and progress while a task runs, then its images and parameters.
import { announce, h } from "./dom.js";

const $ = (id) => document.getElementById(id);

export const STATUS_TEXT = {
  task_queue: "Queued — waiting for a free worker",
  task_accept: "Accepted",
  task_assign: "Assigned to a worker",
  task_preprocess_start: "Preparing inputs",
  task_preprocess_end: "Inputs ready",
  task_start: "Generating",
  task_output: "Generating",
  task_error: "Failed",
  task_error_full: "Failed",
  task_end: "Storing images",
  task_postprocess_start: "Finishing",
  task_postprocess_end: "Done",
  task_cancel: "Cancelled",
};

// What the line under the bar says before the first progress frame arrives.
const WAITING_TEXT = {
  task_queue: "Waiting in the queue…",
  task_accept: "Preparing…",
  task_assign: "Preparing…",
  task_preprocess_start: "Preparing the inputs (the first run of a tool also loads its model)…",
  task_preprocess_end: "Preparing the inputs (the first run of a tool also loads its model)…",
  task_start: "Starting…",
};
let hasProgress = false;

export function statusText(status) {
  return STATUS_TEXT[status] || status;
}

export function isImage(output) {
  return String(output.contenttype || "").startsWith("image/") || /\.(png|jpe?g|webp|gif)$/i.test(output.name || "");
}

export function showLive(task) {
  $("task-empty").hidden = true;
  $("task-live").hidden = false;
  $("results").hidden = true;
  $("task-error").hidden = true;
  $("task-id").textContent = `#${task.taskid}`;
  $("kill-button").hidden = false;
  hasProgress = false;
  setStatus("task_queue");
  const bar = $("task-progress");
  bar.removeAttribute("value");
  $("task-progress-label").textContent = "";
}

export function setStatus(status) {
  const el = $("task-status");
  el.textContent = statusText(status);
  el.dataset.status = status;
  $("task-live").dataset.status = status;
  $("kill-button").textContent = status === "task_queue" ? "Cancel" : "Kill";
  if (!hasProgress) $("task-progress-label").textContent = WAITING_TEXT[status] || "";
  announce(statusText(status));
}

export function setProgress(progress) {
  hasProgress = true;
  const bar = $("task-progress");
  const current = Number(progress.stepCurrent);
  const total = Number(progress.stepTotal);
  const percentage = Number(progress.percentage ?? (total ? (100 * current) / total : 0));
  bar.value = Number.isFinite(percentage) ? percentage : 0;
  const parts = [];
  if (Number.isFinite(current) && Number.isFinite(total) && total) parts.push(`Step ${current} of ${total}`);
  if (progress.speed) parts.push(`${progress.speed} ${progress.speedType || "it/s"}`);
  if (progress.remainingTime !== undefined) parts.push(`ETA ${progress.remainingTime}`);
  $("task-progress-label").textContent = parts.join(" · ");
  $("task-status").textContent = statusText("task_start");
  $("task-live").dataset.status = "task_start";
}

/** The finished task (a Task/Detail entry): its images, its error, its parameters. */
export function showResult(task, viewer) {
  $("task-empty").hidden = true;
  $("task-live").hidden = false;
  $("kill-button").hidden = true;
  $("task-id").textContent = `#${task.id}`;
  setStatus(task.status);
  const failed = task.status !== "task_cancel" && task.pexit && task.pexit !== "0";
  const bar = $("task-progress");
  bar.value = task.status === "task_postprocess_end" && !failed ? 100 : bar.value || 0;
  if (failed) $("task-status").textContent = "Failed";
  if (task.status === "task_cancel") $("task-status").textContent = "Cancelled";
  $("task-live").dataset.status = failed ? "failed" : task.status;
  const error = $("task-error");
  error.textContent = task.debugerror || "";
  error.hidden = !task.debugerror;
  const done = task.status === "task_postprocess_end" && !failed;
  $("task-progress-label").textContent = done ? `Done in ${Number(task.elapsedseconds || 0).toFixed(1)} s` : "";

  const gallery = $("gallery");
  const images = (task.outputs || []).filter(isImage);
  gallery.replaceChildren(
    ...images.map((output, index) =>
      h(
        "li",
        {},
        h(
          "button",
          { type: "button", class: "image-button", onclick: () => viewer.open(output, index, images.length) },
          h("img", { src: output.url, alt: `Image ${index + 1} of ${images.length} (open full size)`, loading: "lazy" }),
        ),
        h("a", { href: output.url, download: output.name, class: "download" }, `Download ${output.name}`),
      ),
    ),
  );
  const parameters = $("parameters");
  const entries = Object.entries(parametersOf(task));
  parameters.replaceChildren(...entries.flatMap(([key, value]) => [h("dt", {}, key), h("dd", {}, String(value))]));
  $("results").hidden = false;
  $("snippet").hidden = true;
  announce(images.length ? `${images.length} image${images.length > 1 ? "s" : ""} ready` : statusText(task.status));
}

export function parametersOf(task) {
  const value = task.parameters;
  if (value && typeof value === "object") return value;
  try {
    return JSON.parse(value || "{}") || {};
  } catch {
    return {};
  }
}

export function imageViewer() {
  const dialog = $("viewer");
  $("viewer-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close();
  });
  return {
    open(output, index, count) {
      $("viewer-title").textContent = `Image ${index + 1} of ${count}`;
      $("viewer-image").src = output.url;
      $("viewer-image").alt = `Image ${index + 1} of ${count}, full size`;
      $("viewer-download").href = output.url;
      $("viewer-download").setAttribute("download", output.name || "image.png");
      dialog.showModal();
    },
  };
}
