// "Copy as curl" / "Copy as Python" for the exact request a run sent (credentials as variables).

function shellQuote(text) {
  return `'${String(text).replace(/'/g, `'"'"'`)}'`;
}

function pyString(text) {
  return JSON.stringify(String(text));
}

/** `request` is {url, values: {id: string}, files: {part: File}} with an absolute `url`. */
export function asCurl(request, signed) {
  const lines = [];
  if (signed) {
    lines.push(
      "export NONCE=$(date +%s)",
      'export SIGNATURE="$(echo -n "${YOUR_API_SECRET}${NONCE}" | openssl dgst -sha256 -hmac "${YOUR_API_KEY}" | sed \'s/^.* //\')"',
    );
  }
  const parts = [`curl -X POST ${shellQuote(request.url)}`, '-H "x-api-key: ${YOUR_API_KEY}"'];
  if (signed) parts.push('-H "x-nonce: ${NONCE}"', '-H "x-signature: ${SIGNATURE}"');
  const fileNames = Object.entries(request.files);
  if (fileNames.length) {
    for (const [name, value] of Object.entries(request.values)) parts.push(`-F ${shellQuote(`${name}=${value}`)}`);
    for (const [name, file] of fileNames) parts.push(`-F ${shellQuote(`${name}=@${file.name}`)}`);
  } else {
    parts.push('-H "Content-Type: application/json"', `-d ${shellQuote(JSON.stringify(request.values))}`);
  }
  lines.push(parts.join(" \\\n  "));
  return lines.join("\n");
}

export function asPython(request, signed) {
  const lines = ["import hashlib, hmac, os, time", "", "import requests", ""];
  lines.push('api_key = os.environ["YOUR_API_KEY"]');
  if (signed) {
    lines.push(
      'api_secret = os.environ["YOUR_API_SECRET"]',
      "nonce = str(int(time.time()))",
      "signature = hmac.new(api_key.encode(), (api_secret + nonce).encode(), hashlib.sha256).hexdigest()",
      'headers = {"x-api-key": api_key, "x-nonce": nonce, "x-signature": signature}',
    );
  } else {
    lines.push('headers = {"x-api-key": api_key}');
  }
  const body = JSON.stringify(request.values, null, 4);
  const files = Object.entries(request.files);
  if (files.length) {
    lines.push(`data = ${body}`);
    lines.push(`files = {${files.map(([name, file]) => `${pyString(name)}: open(${pyString(file.name)}, "rb")`).join(", ")}}`);
    lines.push(`answer = requests.post(${pyString(request.url)}, headers=headers, data=data, files=files).json()`);
  } else {
    lines.push(`body = ${body}`);
    lines.push(`answer = requests.post(${pyString(request.url)}, headers=headers, json=body).json()`);
  }
  lines.push('print(answer["taskid"], answer["socketaccesstoken"])');
  return lines.join("\n");
}

export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      /* fall through to the selection way */
    }
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.append(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  return ok;
}
