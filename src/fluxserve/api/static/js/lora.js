// The LoRA picker: the catalog's LoRAs with their trigger words, a scale slider per chosen one.
import { h, uid } from "./dom.js";

export function loraPicker(field, describedBy) {
  const rows = field.loras.map((lora) => loraRow(lora, describedBy));
  const element = h(
    "fieldset",
    { class: "lora-picker", "aria-describedby": describedBy },
    h("legend", {}, field.label),
    rows.map((row) => row.element),
  );
  return {
    element,
    focusTarget: rows[0]?.checkbox,
    scaleIds: field.loras.filter((l) => l.scale).map((l) => l.scale.id),
    /** The chosen ids ("678,1239") and each chosen LoRA's scale field. */
    values() {
      const chosen = rows.filter((row) => row.checkbox.checked);
      const scales = {};
      for (const row of chosen) if (row.lora.scale) scales[row.lora.scale.id] = row.slider.value;
      return { ids: chosen.map((row) => row.lora.value).join(","), scales };
    },
    set(ids, scales) {
      const wanted = new Set(String(ids || "").split(",").map((s) => s.trim()).filter(Boolean));
      for (const row of rows) {
        row.setChecked(wanted.has(row.lora.value));
        if (row.lora.scale && scales[row.lora.scale.id] !== undefined) row.setScale(scales[row.lora.scale.id]);
      }
    },
    scaleControl(id) {
      return rows.find((row) => row.lora.scale && row.lora.scale.id === id)?.slider || null;
    },
  };
}

function loraRow(lora, describedBy) {
  const checkId = uid("lora");
  const sliderId = uid("lora-scale");
  const checkbox = h("input", { type: "checkbox", id: checkId, value: lora.value, "data-lora": lora.value });
  const output = h("output", { for: sliderId });
  const scale = lora.scale;
  const slider = scale
    ? h("input", {
        type: "range",
        id: sliderId,
        min: scale.min,
        max: scale.max,
        step: scale.step,
        value: scale.default,
        "data-scale": scale.id,
        "aria-describedby": describedBy,
      })
    : null;
  const scaleBlock = scale
    ? h("div", { class: "lora-scale", hidden: true }, h("label", { for: sliderId }, `Scale of ${shortName(lora.label)}`), slider, output)
    : h("div", { hidden: true });
  const sync = () => {
    if (slider) output.textContent = Number(slider.value).toFixed(2);
  };
  slider?.addEventListener("input", sync);
  sync();
  const setChecked = (on) => {
    checkbox.checked = on;
    scaleBlock.hidden = !on;
    element.classList.toggle("chosen", on);
  };
  checkbox.addEventListener("change", () => setChecked(checkbox.checked));
  const element = h(
    "div",
    { class: "lora" },
    h(
      "div",
      { class: "lora-head" },
      checkbox,
      h("label", { for: checkId }, h("strong", {}, lora.label), lora.description ? h("span", { class: "muted" }, lora.description) : null),
    ),
    lora.triggerwords.length
      ? h("p", { class: "triggers" }, "Trigger words: ", lora.triggerwords.map((word) => h("code", {}, word)))
      : null,
    scaleBlock,
  );
  return {
    lora,
    checkbox,
    slider,
    element,
    setChecked,
    setScale(value) {
      if (slider) {
        slider.value = value;
        sync();
      }
    },
  };
}

function shortName(label) {
  return label.split("/").pop();
}
