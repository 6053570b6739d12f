// The playground's wiring: credentials → tools → form → run → live progress → results → history.
import { ApiError, AuthError, api, forgetCredentials, loadCredentials, saveCredentials } from "./api.js";
import { announce } from "./dom.js";
import { buildForm } from "./form.js";
import { refreshHistory } from "./history.js";
import { follow } from "./live.js";
import { toolFields, toolSlug } from "./schema.js";
import { asCurl, asPython, copyText } from "./snippets.js";
import { imageViewer, parametersOf, setProgress, setStatus, showLive, showResult } from "./taskview.js";

const $ = (id) => document.getElementById(id);

const state = {
  credentials: null,
  tools: [],
  tool: null, // the Tool/Detail entry of the chosen tool
  form: null,
  following: null, // {taskid, token, handle, status}
  shown: null, // {task, request} of the task in the results panel
};
const viewer = imageViewer();

function showError(el, message) {
  el.textContent = message || "";
  el.hidden = !message;
}

function handleFailure(error, target) {
  if (error instanceof AuthError) {
    signOut(`The server refused these credentials: ${error.message}`);
    return;
  }
  showError(target, error.message || String(error));
}

// --- credentials -----------------------------------------------------------------------------

async function connect(credentials) {
  state.credentials = credentials;
  try {
    const answer = await api.toolList(credentials);
    state.tools = answer.tool || [];
  } catch (error) {
    if (error instanceof AuthError || error instanceof ApiError) {
      signOut(`Could not connect: ${error.message}`);
      return;
    }
    throw error;
  }
  $("credentials").hidden = true;
  $("workspace").hidden = false;
  $("session").hidden = false;
  $("session-key").textContent = `Key ${credentials.apiKey.slice(0, 6)}…${credentials.apiSecret ? "" : " (key only)"}`;
  fillToolPicker();
  await selectTool(initialTool());
  loadHistory();
}

function signOut(message) {
  forgetCredentials();
  state.credentials = null;
  state.tool = null;
  state.form = null;
  state.following?.handle.stop();
  $("credentials").hidden = false;
  $("workspace").hidden = true;
  $("session").hidden = true;
  showError($("credentials-error"), message || "");
  $("api-key").focus();
}

// --- tools and the form ----------------------------------------------------------------------

function fillToolPicker() {
  const select = $("tool-select");
  select.replaceChildren(
    ...state.tools.map((tool) => {
      const option = document.createElement("option");
      option.value = toolSlug(tool).slug;
      const unavailable = tool.available === "false" || tool.available === false;
      option.textContent = `${tool.title || toolSlug(tool).slug}${unavailable ? " (not configured here)" : ""}`;
      return option;
    }),
  );
}

function initialTool() {
  const wanted = decodeURIComponent(location.hash.replace(/^#tool=/, ""));
  const slugs = state.tools.map((tool) => toolSlug(tool).slug);
  if (slugs.includes(wanted)) return wanted;
  const available = state.tools.find((tool) => tool.available !== "false" && tool.available !== false);
  return available ? toolSlug(available).slug : slugs[0];
}

let toolRequests = 0;

async function selectTool(slug) {
  const listed = state.tools.find((tool) => toolSlug(tool).slug === slug);
  if (!listed) return;
  $("tool-select").value = slug;
  if (state.tool && state.form && toolSlug(state.tool).slug === slug) return; // already drawn
  history.replaceState(null, "", `#tool=${encodeURIComponent(slug)}`);
  const { owner, project } = toolSlug(listed);
  showError($("form-error"), "");
  const request = ++toolRequests;
  let tool;
  try {
    tool = (await api.toolDetail(state.credentials, owner, project)).tool[0];
  } catch (error) {
    handleFailure(error, $("form-error"));
    return;
  }
  if (request !== toolRequests) return; // another tool was chosen meanwhile
  state.tool = tool;
  $("tool-description").textContent = state.tool.description || "";
  const reason = state.tool.unavailablereason || "";
  showError($("tool-unavailable"), reason ? `Not configured on this server: ${reason}` : "");
  state.form = buildForm($("fields"), toolFields(state.tool));
  $("fields").dataset.tool = slug;
}

// --- running ---------------------------------------------------------------------------------

function requestBody(values, files) {
  if (!Object.keys(files).length) return values;
  const form = new FormData();
  for (const [name, value] of Object.entries(values)) form.append(name, value);
  for (const [name, file] of Object.entries(files)) form.append(name, file, file.name);
  return form;
}

async function run(request) {
  const { owner, project } = request.tool;
  state.form.clearErrors();
  showError($("form-error"), "");
  $("run-button").disabled = true;
  let answer;
  try {
    answer = await api.run(state.credentials, owner, project, requestBody(request.values, request.files));
  } catch (error) {
    if (error instanceof ApiError) {
      const unplaced = state.form.showErrors(error.errors);
      showError($("form-error"), unplaced.map((e) => e.message).join("\n"));
      announce("The server refused the input; see the messages next to the fields.");
    } else {
      handleFailure(error, $("form-error"));
    }
    return;
  } finally {
    $("run-button").disabled = false;
  }
  watch(answer.taskid, answer.socketaccesstoken, request);
  loadHistory();
}

function watch(taskid, token, request) {
  state.following?.handle.stop();
  showLive({ taskid });
  const following = { taskid, token, status: "task_queue" };
  following.handle = follow(state.credentials, taskid, token, {
    onStatus: (status) => {
      if (state.following !== following) return;
      following.status = status;
      setStatus(status);
    },
    onProgress: (progress) => {
      if (state.following === following) setProgress(progress);
    },
  });
  state.following = following;
  explainWait(following);
  following.handle.done.then(async () => {
    if (state.following !== following) return;
    state.following = null;
    await showTask(taskid, request);
    loadHistory();
  });
}

/** While a task stays queued, show why, when Detail says (e.g. no live worker runs this tool). */
async function explainWait(following) {
  await new Promise((resolve) => setTimeout(resolve, 1500));
  if (state.following !== following || following.status !== "task_queue") return;
  try {
    const task = (await api.detail(state.credentials, following.taskid)).tasklist[0];
    const note = String(task.debugoutput || "").trim();
    if (state.following === following && task.status === "task_queue" && note && !note.startsWith("{")) {
      $("task-progress-label").textContent = note;
    }
  } catch {
    return; // the socket still reports the status; this note is only a courtesy
  }
  explainWait(following);
}

async function showTask(taskid, request) {
  try {
    const task = (await api.detail(state.credentials, taskid)).tasklist[0];
    state.shown = { task, request };
    showResult(task, viewer);
  } catch (error) {
    handleFailure(error, $("task-error"));
  }
}

function currentRequest() {
  const { values, files } = state.form.request();
  return { tool: toolSlug(state.tool), values, files };
}

/** The request a listed task was made with, rebuilt from its echoed parameters. */
function requestOfTask(task) {
  const tool = toolOfTask(task);
  const values = {};
  for (const [key, value] of Object.entries(parametersOf(task))) values[key] = String(value);
  return { tool: tool ? toolSlug(tool) : toolSlug(state.tool), values, files: {} };
}

function toolOfTask(task) {
  if (task.modelslugowner && task.modelslugproject) {
    const slug = `${task.modelslugowner}/${task.modelslugproject}`;
    const bySlug = state.tools.find((tool) => toolSlug(tool).slug === slug);
    if (bySlug) return bySlug;
  }
  return state.tools.find((tool) => String(tool.id) === String(task.modelid)) || null;
}

async function stopTask(taskid, how) {
  try {
    await (how === "cancel" ? api.cancel : api.kill)(state.credentials, taskid);
    announce(how === "cancel" ? "Cancel requested" : "Kill requested");
  } catch (error) {
    handleFailure(error, $("task-error"));
  }
  loadHistory();
}

// --- history ---------------------------------------------------------------------------------

let historyTimer = null;

async function loadHistory() {
  clearTimeout(historyTimer);
  if (!state.credentials) return;
  let tasks = [];
  try {
    tasks = await refreshHistory(state.credentials, {
      toolName: (task) => toolOfTask(task)?.title || "",
      show: (task) => {
        state.shown = { task, request: requestOfTask(task) };
        showResult(task, viewer);
        $("task-panel").scrollIntoView({ block: "nearest" });
      },
      stop: (task, how) => stopTask(task.id, how),
    });
  } catch (error) {
    handleFailure(error, $("history-empty"));
    return;
  }
  // Unfinished tasks change on their own: look again in a while.
  if (tasks.some((task) => task.status !== "task_postprocess_end" && task.status !== "task_cancel")) {
    historyTimer = setTimeout(loadHistory, 2000);
  }
}

// --- results' buttons ------------------------------------------------------------------------

async function sameSeed() {
  const { task, request } = state.shown;
  const slug = request.tool.slug;
  if (toolSlug(state.tool).slug !== slug) await selectTool(slug);
  state.form.fill(parametersOf(task));
  announce("The form now holds this run's parameters and seed.");
  $("run-form").querySelector("input, textarea, select")?.focus();
}

function showSnippet(kind) {
  const { request } = state.shown;
  const full = { ...request, url: new URL(`/v1/Run/${request.tool.owner}/${request.tool.project}`, location.href).href };
  const signed = Boolean(state.credentials.apiSecret);
  const text = kind === "curl" ? asCurl(full, signed) : asPython(full, signed);
  const pre = $("snippet");
  pre.textContent = text;
  pre.hidden = false;
  pre.dataset.kind = kind;
  copyText(text).then((ok) => announce(ok ? `Copied as ${kind}` : "Select the text to copy it"));
}

// --- start -----------------------------------------------------------------------------------

function bind() {
  $("credentials-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("api-key").value.trim();
    if (!key) {
      showError($("credentials-error"), "Enter the API key.");
      $("api-key").focus();
      return;
    }
    showError($("credentials-error"), "");
    connect(saveCredentials(key, $("api-secret").value));
  });
  $("sign-out").addEventListener("click", () => signOut(""));
  $("tool-select").addEventListener("change", (event) => selectTool(event.target.value));
  $("run-form").addEventListener("submit", (event) => {
    event.preventDefault();
    run(currentRequest());
  });
  $("kill-button").addEventListener("click", () => {
    const following = state.following;
    if (following) stopTask(following.taskid, following.status === "task_queue" ? "cancel" : "kill");
  });
  $("history-refresh").addEventListener("click", loadHistory);
  $("run-again").addEventListener("click", () => state.shown && run(state.shown.request));
  $("same-seed").addEventListener("click", () => state.shown && sameSeed());
  $("copy-curl").addEventListener("click", () => state.shown && showSnippet("curl"));
  $("copy-python").addEventListener("click", () => state.shown && showSnippet("python"));
}

bind();
const saved = loadCredentials();
if (saved) connect(saved);
else $("credentials").hidden = false;
document.body.dataset.ready = "true";
