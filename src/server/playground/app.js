// Kinfer playground: chat with the served model over the OpenAI API this server answers, with
// streaming, the sampling parameters, token counts and speed, and the request as a curl command.
// Plain browser JavaScript, no build step and nothing fetched from elsewhere. Text is always put
// on the page as text (textContent), never as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  // Absolute URLs from the origin: a page opened as http://user:key@host/ must not resolve
  // relative URLs with the credentials in them (fetch refuses those).
  const api = (path) => window.location.origin + path;
  const authRequired = document.documentElement.dataset.auth === "on";
  const history = [];  // {role, content} of the conversation so far
  let controller = null;

  function setStatus(text, isError) {
    $("status").textContent = text;
    $("status").classList.toggle("error", Boolean(isError));
  }

  function addMessage(role, text) {
    const li = document.createElement("li");
    li.className = role;
    const label = document.createElement("span");
    label.className = "role";
    label.textContent = role;
    const body = document.createElement("span");
    body.className = "content";
    body.textContent = text;
    li.append(label, body);
    $("messages").append(li);
    $("messages").scrollTop = $("messages").scrollHeight;
    return li;
  }

  function number(id) {
    const v = $(id).value.trim();
    return v === "" ? null : Number(v);
  }

  // The chat request the current settings and conversation make (without the new message when
  // `pending` is null).
  function requestBody(pending) {
    const messages = [];
    const system = $("system").value.trim();
    if (system) messages.push({role: "system", content: system});
    messages.push(...history);
    if (pending !== null) messages.push({role: "user", content: pending});
    const body = {
      model: $("model").value,
      messages,
      stream: true,
      stream_options: {include_usage: true},
      temperature: number("temperature"),
      top_p: number("top_p"),
      max_tokens: number("max_tokens"),
    };
    const topK = number("top_k");
    if (topK !== null && topK !== -1) body.top_k = topK;
    const minP = number("min_p");
    if (minP) body.min_p = minP;
    const seed = number("seed");
    if (seed !== null) body.seed = seed;
    const stops = $("stop_strings").value.split("\n").filter((s) => s.length > 0);
    if (stops.length) body.stop = stops;
    for (const k of Object.keys(body)) if (body[k] === null) delete body[k];
    return body;
  }

  function curlFor(body) {
    const json = JSON.stringify(body).replace(/'/g, "'\\''");
    const lines = [`curl -N ${api("/v1/chat/completions")}`,
                   `  -H 'Content-Type: application/json'`];
    if (authRequired) lines.push(`  -H "Authorization: Bearer $KINFER_API_KEY"`);
    lines.push(`  -d '${json}'`);
    return lines.join(" \\\n");
  }

  function updateCurl() {
    const draft = $("prompt").value;
    $("curl").textContent = curlFor(requestBody(draft.trim() ? draft : "Hello!"));
  }

  async function errorText(resp) {
    try {
      const j = await resp.json();
      if (j && j.error && j.error.message) return `${resp.status}: ${j.error.message}`;
    } catch (e) { /* not JSON */ }
    return `${resp.status} ${resp.statusText}`;
  }

  async function loadModels() {
    for (;;) {
      let resp;
      try {
        resp = await fetch(api("/v1/models"), {credentials: "same-origin"});
      } catch (e) {
        setStatus(`cannot reach the server: ${e.message}`, true);
        await new Promise((r) => setTimeout(r, 2000));
        continue;
      }
      if (resp.status === 503) {  // still loading the model
        setStatus("the model is loading...");
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      if (!resp.ok) {
        setStatus(`cannot list models: ${await errorText(resp)}`, true);
        return;
      }
      const list = await resp.json();
      const select = $("model");
      select.replaceChildren();
      for (const m of list.data) {
        const opt = document.createElement("option");
        opt.value = m.id;
        opt.textContent = m.max_model_len ? `${m.id} (${m.max_model_len} tokens)` : m.id;
        select.append(opt);
      }
      setStatus("ready");
      document.body.dataset.ready = "true";
      updateCurl();
      return;
    }
  }

  function showStats(s) {
    $("stat-prompt").textContent = s.prompt ?? "-";
    $("stat-completion").textContent = s.completion ?? "-";
    $("stat-ttft").textContent = s.ttft == null ? "-" : `${(s.ttft / 1000).toFixed(2)} s`;
    $("stat-speed").textContent = s.speed == null ? "-" : `${s.speed.toFixed(1)} tokens/s`;
    $("stat-finish").textContent = s.finish ?? "-";
  }

  async function send(text) {
    const body = requestBody(text);
    $("curl").textContent = curlFor(body);
    addMessage("user", text);
    const li = addMessage("assistant", "");
    const content = li.querySelector(".content");
    controller = new AbortController();
    $("send").disabled = true;
    $("stop").disabled = false;
    setStatus("generating...");
    const start = performance.now();
    let first = null;
    let reply = "";
    const stats = {};
    try {
      const resp = await fetch(api("/v1/chat/completions"), {
        method: "POST",
        headers: {"Content-Type": "application/json"},
        body: JSON.stringify(body),
        signal: controller.signal,
        credentials: "same-origin",
      });
      if (!resp.ok) throw new Error(await errorText(resp));
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      let done = false;
      while (!done) {
        const chunk = await reader.read();
        if (chunk.done) break;
        buffer += decoder.decode(chunk.value, {stream: true});
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const event = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          for (const line of event.split("\n")) {
            if (!line.startsWith("data: ")) continue;
            const data = line.slice(6);
            if (data === "[DONE]") { done = true; break; }
            const j = JSON.parse(data);
            if (j.error) throw new Error(j.error.message);
            for (const c of j.choices || []) {
              const delta = (c.delta && c.delta.content) || "";
              if (delta) {
                if (first === null) first = performance.now();
                reply += delta;
                content.textContent = reply;
                $("messages").scrollTop = $("messages").scrollHeight;
              }
              if (c.finish_reason) stats.finish = c.finish_reason;
            }
            if (j.usage) {
              stats.prompt = j.usage.prompt_tokens;
              stats.completion = j.usage.completion_tokens;
            }
          }
        }
      }
      const end = performance.now();
      if (first !== null) {
        stats.ttft = first - start;
        // Tokens after the first, over the time they took (the first is in the TTFT).
        const tokens = (stats.completion || 1) - 1;
        stats.speed = tokens > 0 && end > first ? tokens / ((end - first) / 1000) : null;
      }
      history.push({role: "user", content: text}, {role: "assistant", content: reply});
      showStats(stats);
      setStatus("ready");
    } catch (e) {
      if (e.name === "AbortError") {
        history.push({role: "user", content: text}, {role: "assistant", content: reply});
        stats.finish = "stopped";
        showStats(stats);
        setStatus("stopped");
      } else {
        li.className = "error";
        content.textContent = reply ? `${reply}\n\n${e.message}` : e.message;
        setStatus(e.message, true);
      }
    } finally {
      li.dataset.done = "true";
      controller = null;
      $("send").disabled = false;
      $("stop").disabled = true;
      updateCurl();
    }
  }

  async function copyCurl() {
    const text = $("curl").textContent;
    try {
      await navigator.clipboard.writeText(text);
      setStatus("curl command copied");
    } catch (e) {
      // No clipboard (an insecure origin, a headless browser): select it for Ctrl+C instead.
      const range = document.createRange();
      range.selectNodeContents($("curl"));
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      setStatus("curl command selected: press Ctrl+C to copy");
    }
  }

  $("composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("prompt").value;
    if (!text.trim() || controller) return;
    $("prompt").value = "";
    send(text);
  });
  $("prompt").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) {
      ev.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("stop").addEventListener("click", () => controller && controller.abort());
  $("clear").addEventListener("click", () => {
    if (controller) controller.abort();
    history.length = 0;
    $("messages").replaceChildren();
    showStats({});
    updateCurl();
  });
  $("copy-curl").addEventListener("click", copyCurl);
  for (const el of document.querySelectorAll("#settings input, #settings textarea, #model, #prompt")) {
    el.addEventListener("input", updateCurl);
  }
  loadModels();
})();
