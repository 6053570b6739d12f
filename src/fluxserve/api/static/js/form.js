// The run form, generated from a tool's fields: one control per input type, errors beside them.
import { h, uid } from "./dom.js";
import { imageInput } from "./images.js";
import { loraPicker } from "./lora.js";
import { fieldOfMessage } from "./schema.js";

const MAX_SEED = 4294967295;
const DICE_SVG =
  '<svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true" focusable="false">' +
  '<rect x="3" y="3" width="18" height="18" rx="4" fill="none" stroke="currentColor" stroke-width="2"/>' +
  '<circle cx="8" cy="8" r="1.6" fill="currentColor"/><circle cx="16" cy="8" r="1.6" fill="currentColor"/>' +
  '<circle cx="12" cy="12" r="1.6" fill="currentColor"/><circle cx="8" cy="16" r="1.6" fill="currentColor"/>' +
  '<circle cx="16" cy="16" r="1.6" fill="currentColor"/></svg>';

export function randomSeed() {
  const values = new Uint32Array(1);
  crypto.getRandomValues(values);
  return String(values[0] % MAX_SEED);
}

function asText(value) {
  if (value === undefined || value === null) return "";
  if (Array.isArray(value)) return value.join(",");
  return String(value);
}

/** Build the controls for `fields` inside `container`; returns the form's model. */
export function buildForm(container, fields) {
  container.replaceChildren();
  const controls = new Map(); // id → {field, wrapper, errorEl, get(), set(), focusTarget}
  for (const field of fields) {
    const control = buildControl(field);
    controls.set(field.id, control);
    container.append(control.wrapper);
  }

  function errorSlot(id) {
    if (controls.has(id)) return controls.get(id);
    for (const control of controls.values()) {
      const part = control.field.filePart; // "Request files [inputImage] required"
      if (part && (part === id || `${part}Url` === id)) return control;
    }
    for (const control of controls.values()) {
      const scale = control.picker?.scaleControl(id);
      if (scale) return { ...control, focusTarget: scale };
    }
    return null;
  }

  return {
    fields,
    /** {values: {id: string}, files: {part: File}} — what the Run request carries. */
    request() {
      const values = {};
      const files = {};
      for (const { field, get } of controls.values()) {
        const value = get();
        if (field.kind === "image") {
          if (value.file) files[field.filePart] = value.file;
          else values[field.id] = value.url;
        } else if (field.kind === "lora") {
          values[field.id] = value.ids;
          Object.assign(values, value.scales);
        } else {
          values[field.id] = value;
        }
      }
      return { values, files };
    },
    /** Fill the form from a task's `parameters` (strings, as the API echoes them). */
    fill(parameters) {
      for (const control of controls.values()) {
        if (control.field.kind === "lora") control.set(parameters[control.field.id], parameters);
        else if (parameters[control.field.id] !== undefined) control.set(parameters[control.field.id]);
      }
    },
    setValue(id, value) {
      controls.get(id)?.set(value);
    },
    clearErrors() {
      for (const control of controls.values()) control.showError("");
    },
    /** Put each message next to the field it names; the rest are returned for the general area. */
    showErrors(errors) {
      const ids = [...controls.keys()];
      for (const control of controls.values()) {
        if (control.picker) ids.push(...control.picker.scaleIds);
        if (control.field.filePart) ids.push(control.field.filePart, `${control.field.filePart}Url`);
      }
      const unplaced = [];
      let first = null;
      for (const error of errors) {
        const id = fieldOfMessage(error.message, ids);
        const slot = id && errorSlot(id);
        if (!slot) {
          unplaced.push(error);
          continue;
        }
        slot.showError(error.message);
        first = first || slot.focusTarget;
      }
      first?.focus();
      return unplaced;
    },
  };
}

function buildControl(field) {
  const controlId = uid(`in-${field.id}`);
  const noteId = uid("note");
  const errorId = uid("error");
  const describedBy = `${noteId} ${errorId}`;
  const errorEl = h("p", { class: "error", id: errorId, hidden: true });
  const noteEl = field.note ? h("p", { class: "note", id: noteId }, field.note) : h("span", { id: noteId, hidden: true });
  const built = controlFor(field, controlId, describedBy);
  // The asterisk stays outside the label: the control's `required` already tells assistive tech.
  const label = ["lora"].includes(field.kind)
    ? null
    : h(
        "div",
        { class: "field-head" },
        h("label", { for: built.labelFor || controlId }, field.label),
        field.required ? h("span", { class: "required", "aria-hidden": "true", title: "required" }, "*") : null,
      );
  const wrapper = h("div", { class: `field field-${field.kind}`, dataset: { field: field.id } }, label, built.element, noteEl, errorEl);
  const showError = (message) => {
    errorEl.textContent = message;
    errorEl.hidden = !message;
    wrapper.classList.toggle("invalid", Boolean(message));
    for (const el of wrapper.querySelectorAll("input, textarea, select")) {
      if (message) el.setAttribute("aria-invalid", "true");
      else el.removeAttribute("aria-invalid");
    }
  };
  return { field, wrapper, errorEl, showError, ...built };
}

function controlFor(field, id, describedBy) {
  const common = { id, name: field.id, "aria-describedby": describedBy, required: field.required || undefined };
  switch (field.kind) {
    case "textarea": {
      const el = h("textarea", { ...common, rows: 3, placeholder: field.placeholder || undefined });
      el.value = asText(field.default);
      return { element: el, focusTarget: el, get: () => el.value, set: (v) => { el.value = asText(v); } };
    }
    case "select": {
      const el = h("select", common, field.options.map((o) => h("option", { value: o.value }, o.label)));
      el.value = asText(field.default);
      return { element: el, focusTarget: el, get: () => el.value, set: (v) => { el.value = asText(v); } };
    }
    case "checkbox": {
      const el = h("input", { ...common, type: "checkbox" });
      el.checked = ["true", "1", "yes"].includes(asText(field.default).toLowerCase());
      return { element: el, focusTarget: el, get: () => String(el.checked), set: (v) => { el.checked = ["true", "1", "yes"].includes(asText(v).toLowerCase()); } };
    }
    case "seed":
      return seedControl(field, common);
    case "number":
      return numberControl(field, common);
    case "image": {
      const input = imageInput(field, describedBy);
      input.setUrl(asText(field.default));
      return {
        element: input.element,
        labelFor: input.focusTarget.id,
        focusTarget: input.focusTarget,
        get: () => input.value(),
        set: (v) => input.setUrl(asText(v)),
      };
    }
    case "lora": {
      const picker = loraPicker(field, describedBy);
      return {
        element: picker.element,
        picker,
        focusTarget: picker.focusTarget,
        get: () => picker.values(),
        set: (ids, parameters) => picker.set(ids, parameters || {}),
      };
    }
    default: {
      const el = h("input", { ...common, type: "text", placeholder: field.placeholder || undefined });
      el.value = asText(field.default);
      return { element: el, focusTarget: el, get: () => el.value.trim(), set: (v) => { el.value = asText(v); } };
    }
  }
}

function seedControl(field, common) {
  const el = h("input", { ...common, type: "text", inputmode: "numeric", placeholder: "empty: a random seed" });
  el.value = asText(field.default);
  const dice = h("button", {
    type: "button",
    class: "icon-button",
    "aria-label": "Random seed",
    title: "Random seed",
    onclick: () => { el.value = randomSeed(); },
  });
  dice.innerHTML = DICE_SVG;
  return {
    element: h("div", { class: "with-button" }, el, dice),
    focusTarget: el,
    get: () => el.value.trim(),
    set: (v) => { el.value = asText(v); },
  };
}

function numberControl(field, common) {
  const step = field.step ?? (field.integer ? 1 : "any");
  const box = h("input", { ...common, type: "number", min: field.min, max: field.max, step, inputmode: field.integer ? "numeric" : "decimal" });
  box.value = asText(field.default);
  if (field.min === undefined || field.max === undefined) {
    return { element: box, focusTarget: box, get: () => box.value.trim(), set: (v) => { box.value = asText(v); } };
  }
  const slider = h("input", {
    type: "range",
    min: field.min,
    max: field.max,
    step: field.step ?? (field.integer ? 1 : (field.max - field.min) / 100),
    "aria-label": `${field.label} slider`,
    tabindex: "-1",
  });
  slider.value = box.value;
  slider.addEventListener("input", () => { box.value = slider.value; });
  box.addEventListener("input", () => { slider.value = box.value; });
  return {
    element: h("div", { class: "with-slider" }, slider, box),
    focusTarget: box,
    get: () => box.value.trim(),
    set: (v) => { box.value = asText(v); slider.value = box.value; },
  };
}
