// The project's recent tasks (Task/List): status, thumbnail, and Cancel/Kill for unfinished ones.
import { api } from "./api.js";
import { h } from "./dom.js";
import { TERMINAL } from "./live.js";
import { isImage, parametersOf, statusText } from "./taskview.js";

const $ = (id) => document.getElementById(id);

function when(seconds) {
  const n = Number(seconds);
  return n ? new Date(n * 1000).toLocaleString() : "";
}

function outcome(task) {
  if (task.status === "task_cancel") return { text: "Cancelled", tone: "cancel" };
  if (task.status === "task_postprocess_end") {
    return task.pexit && task.pexit !== "0" ? { text: "Failed", tone: "failed" } : { text: "Done", tone: "done" };
  }
  if (task.status === "task_queue") return { text: "Queued", tone: "queued" };
  return { text: statusText(task.status), tone: "running" };
}

/** Load and draw the history. `actions` = {toolName(task), show(task), stop(task, how)}. */
export async function refreshHistory(credentials, actions) {
  const answer = await api.list(credentials, 0, 20);
  const tasks = answer.tasklist || [];
  $("history-empty").hidden = tasks.length > 0;
  $("history-list").replaceChildren(...tasks.map((task) => row(task, actions)));
  return tasks;
}

function row(task, actions) {
  const state = outcome(task);
  const image = (task.outputs || []).find(isImage);
  const prompt = String(parametersOf(task).prompt || "");
  const buttons = [];
  if (!TERMINAL.has(task.status)) {
    const how = task.status === "task_queue" ? "cancel" : "kill";
    buttons.push(
      h(
        "button",
        { type: "button", class: "danger small", onclick: () => actions.stop(task, how), "aria-label": `${how === "cancel" ? "Cancel" : "Kill"} task ${task.id}` },
        how === "cancel" ? "Cancel" : "Kill",
      ),
    );
  } else {
    buttons.push(
      h("button", { type: "button", class: "secondary small", onclick: () => actions.show(task), "aria-label": `Show task ${task.id}` }, "Show"),
    );
  }
  return h(
    "li",
    { class: "history-item", dataset: { taskid: task.id, status: task.status } },
    image
      ? h("img", { class: "history-thumb", src: image.url, alt: `Task ${task.id} output`, loading: "lazy" })
      : h("div", { class: "history-thumb placeholder", "aria-hidden": "true" }),
    h(
      "div",
      { class: "history-text" },
      h("p", {}, h("strong", {}, `#${task.id}`), " ", actions.toolName(task), " ", h("span", { class: `chip ${state.tone}` }, state.text)),
      prompt ? h("p", { class: "muted clamp" }, prompt) : null,
      h("p", { class: "muted small" }, when(task.createtime)),
    ),
    h("div", { class: "history-actions" }, buttons),
  );
}
