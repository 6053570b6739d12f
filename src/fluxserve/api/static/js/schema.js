// Tool/Detail → one flat list of fields the form knows how to draw.
// Reads Wiro's documented shape (`parameters: [{title, items: [{id, type, label, …}]}]`) and the
// seeds' older `inputs: [{name, label, help, type, default, options}]` alike.

const KNOWN_LABELS = {
  prompt: "Prompt",
  inferencesteps: "Steps",
  guidancescale: "Guidance scale",
  seed: "Seed",
  width: "Width",
  height: "Height",
  samples: "Samples",
  "select-lora-model": "LoRA models",
  "select-lora-model-private": "Private LoRA model",
};

const NUMERIC_TYPES = new Set(["number", "float", "range", "integer", "int", "slider"]);
const FILE_TYPES = new Set(["fileinput", "multifileinput", "combinefileinput", "file", "image"]);

/** "inputImage2Url" → "Input image 2". */
export function humanize(id) {
  const words = String(id)
    .replace(/Url$/, "")
    .replace(/([a-z])([A-Z0-9])/g, "$1 $2")
    .replace(/[-_]+/g, " ")
    .trim()
    .toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** Labels like "inferencesteps" or "input-image-url" are translation keys, not text. */
function looksLikeKey(text) {
  return !text || /^[a-z0-9]+(?:-[a-z0-9]+)*$/.test(text);
}

function label(item, id) {
  const raw = String(item.label ?? item.title ?? "");
  if (KNOWN_LABELS[raw]) return KNOWN_LABELS[raw];
  if (looksLikeKey(raw)) return humanize(id);
  return raw;
}

/** The help text: a description and a note (such as "1 to 100"), minus translation keys. */
function note(item) {
  const parts = [item.description ?? item.help, item.note].map((text) => String(text ?? "").trim());
  const kept = [...new Set(parts.filter((text) => text && !/^[a-z0-9-]+-help$/.test(text)))];
  return kept.map((text, i) => (i < kept.length - 1 && !/[.!?:)]$/.test(text) ? `${text}.` : text)).join(" ");
}

function number(value) {
  if (value === undefined || value === null || value === "") return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

function kind(item, id) {
  const type = String(item.type || "text").toLowerCase();
  const options = Array.isArray(item.options) ? item.options : [];
  if (FILE_TYPES.has(type) || (type === "text" && /^input.*Image.*Url$/i.test(id))) return "image";
  if (options.some((o) => o && typeof o === "object" && (o.triggerwords || o.generatesettings))) return "lora";
  if (type === "select" || type === "multiselect" || type === "radio") return "select";
  if (type === "textarea") return "textarea";
  if (type === "checkbox" || type === "boolean" || type === "toggle") return "checkbox";
  if (id === "seed") return "seed";
  if (NUMERIC_TYPES.has(type)) return "number";
  return "text";
}

/** The LoRA catalog entries of a LoRA select, with their per-LoRA scale settings. */
function loraOptions(options) {
  return options.map((o) => {
    const setting = (o.generatesettings || [])[0] || null;
    return {
      value: String(o.value ?? o.id),
      label: String(o.label ?? o.value),
      description: String(o.description ?? ""),
      triggerwords: (o.triggerwords || []).map(String),
      scale: setting && {
        id: String(setting.id),
        label: String(setting.label || `${setting.id} scale`),
        min: number(setting.minvalue ?? setting.min) ?? 0,
        max: number(setting.maxvalue ?? setting.max) ?? 1,
        step: number(setting.incrementby ?? setting.step) ?? 0.1,
        default: number(setting.defaultvalue ?? setting.default ?? setting.value) ?? 1,
      },
    };
  });
}

function field(item, group) {
  const id = String(item.id ?? item.name);
  const options = Array.isArray(item.options) ? item.options : [];
  const type = String(item.type || "text").toLowerCase();
  const f = {
    id,
    kind: kind(item, id),
    type,
    group,
    label: label(item, id),
    note: note(item),
    required: item.required === true || item.required === "true" || item.required === 1,
    default: item.default ?? item.value ?? "",
    placeholder: item.placeholder ?? "",
    min: number(item.min ?? item.minvalue),
    max: number(item.max ?? item.maxvalue),
    step: number(item.step ?? item.incrementby),
    integer: ["number", "integer", "int"].includes(type),
    advanced: item.advanced === true,
  };
  if (f.kind === "lora") f.loras = loraOptions(options);
  if (f.kind === "select") {
    f.options = options.map((o) =>
      o && typeof o === "object" ? { value: String(o.value ?? o.id), label: String(o.label ?? o.value ?? o.id) } : { value: String(o), label: String(o) },
    );
  }
  if (f.kind === "image") f.filePart = id.replace(/Url$/, "");
  return f;
}

/** The fields of a tool, in order; select inputs with nothing to choose are left out. */
export function toolFields(tool) {
  const fields = [];
  if (Array.isArray(tool.parameters)) {
    for (const group of tool.parameters) {
      for (const item of group.items || []) fields.push(field(item, String(group.title || "")));
    }
  } else {
    for (const item of tool.inputs || []) fields.push(field(item, ""));
  }
  return fields.filter((f) => !(f.kind === "select" && f.options.length === 0));
}

export function toolSlug(tool) {
  const owner = tool.cleanslugowner || tool.slugowner;
  const project = tool.cleanslugproject || tool.slugproject;
  return { owner, project, slug: `${owner}/${project}` };
}

/** The input field an API error message is about: "Request parameter [steps] …" or "steps: …". */
export function fieldOfMessage(message, ids) {
  const text = String(message || "");
  const bracketed = text.match(/\[([^\]]+)\]/);
  if (bracketed && ids.includes(bracketed[1])) return bracketed[1];
  const leading = text.match(/^\s*'?([A-Za-z0-9_.-]+)'?\s*[:\s]/);
  if (leading && ids.includes(leading[1])) return leading[1];
  return ids.find((id) => new RegExp(`(^|[\\s'"\\[])${id.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}([\\s'":\\]]|$)`).test(text)) || null;
}
