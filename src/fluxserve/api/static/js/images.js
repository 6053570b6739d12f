// An image input: a file (dropped or picked) or a URL, with a thumbnail of what will be sent.
import { h, uid } from "./dom.js";

export function imageInput(field, describedBy) {
  const fileId = uid(`file-${field.id}`);
  const urlId = uid(`url-${field.id}`);
  let file = null;
  let objectUrl = null;

  const thumb = h("img", { class: "thumb", alt: "", hidden: true });
  const caption = h("span", { class: "thumb-caption" });
  const clear = h("button", { type: "button", class: "link", hidden: true, "aria-label": `Remove ${field.label}` }, "Remove");
  const fileInput = h("input", {
    id: fileId,
    type: "file",
    accept: "image/*",
    class: "visually-hidden",
    "data-role": "file",
    "aria-describedby": describedBy,
  });
  const urlInput = h("input", {
    id: urlId,
    type: "url",
    name: field.id,
    placeholder: "https://… or the name of an uploaded file",
    "data-role": "url",
    "aria-describedby": describedBy,
  });
  const drop = h(
    "label",
    { class: "dropzone", for: fileId },
    h("span", {}, "Drop an image here or ", h("u", {}, "choose a file")),
  );

  function showThumb(src, text) {
    thumb.hidden = !src;
    if (src) thumb.src = src;
    else thumb.removeAttribute("src");
    thumb.alt = src ? `Preview of ${field.label}` : "";
    caption.textContent = text || "";
    clear.hidden = !src && !text;
  }

  function setFile(picked) {
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    file = picked;
    objectUrl = picked ? URL.createObjectURL(picked) : null;
    if (picked) urlInput.value = "";
    showThumb(objectUrl, picked ? `${picked.name} (${Math.ceil(picked.size / 1024)} KB)` : "");
  }

  fileInput.addEventListener("change", () => setFile(fileInput.files[0] || null));
  urlInput.addEventListener("change", () => {
    if (urlInput.value.trim()) {
      setFile(null);
      const value = urlInput.value.trim();
      showThumb(/^(https?:|blob:|data:)/.test(value) ? value : "", value);
    }
  });
  clear.addEventListener("click", () => {
    setFile(null);
    fileInput.value = "";
    urlInput.value = "";
    showThumb("", "");
  });
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => {
      event.preventDefault();
      drop.classList.add("dragging");
    });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, () => drop.classList.remove("dragging"));
  }
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    const dropped = [...(event.dataTransfer?.files || [])].find((f) => f.type.startsWith("image/"));
    if (dropped) setFile(dropped);
  });

  const element = h(
    "div",
    { class: "image-input" },
    drop,
    fileInput,
    h("label", { class: "sub-label", for: urlId }, `${field.label} URL`),
    urlInput,
    h("div", { class: "thumb-row" }, thumb, caption, clear),
  );

  return {
    element,
    focusTarget: urlInput,
    /** {file} when a file is chosen, else {url}. */
    value: () => (file ? { file } : { url: urlInput.value.trim() }),
    setUrl(url) {
      setFile(null);
      urlInput.value = url || "";
      showThumb(url && /^(https?:|blob:|data:)/.test(url) ? url : "", url || "");
    },
  };
}
