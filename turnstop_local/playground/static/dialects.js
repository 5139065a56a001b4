// The playground's dialects: how each starts a turn, follows it (a stream, or polling), stops it
// and reconnects. Loaded before playground.js, whose page, HTTP and SSE helpers they call once
// the page is loaded; playground.js lists DIALECTS in the page's dialect menu (each by its label)
// and picks one. Each is a dialect of the service's registry (a test keeps it so).

const sessions = {
  label: "Sessions: streaming turn (SSE)",
  resumable: true,
  ledger: true,
  async start(current, prompt) {
    const created = await call("POST", "/v1/sessions", { persistent: true });
    if (!created.ok) return fail(errorText(created));
    current.sessionId = created.json.id;
    current.onHeaders = (headers) => {
      current.id = headers.get("X-Response-Id");
      show("turn-id", current.id || "");
      buttons({ start: false, stop: true, reconnect: true });
    };
    await follow(current, "POST", `/v1/sessions/${current.sessionId}/messages`, { message: prompt }, {}, (m) =>
      sessions.onEvent(current, m),
    );
  },
  onEvent(current, m) {
    const data = m.data || {};
    if (m.event === "message.delta") appendOutput(data.delta || "");
    else if (m.event === "message.created") setStatus(data.status || "queued");
    else if (m.event.startsWith("message.") && data.status && m.event !== "message.created") {
      setStatus(data.status);
      if (["completed", "cancelled", "failed", "incomplete"].includes(data.status)) {
        terminal(current, m.event, data.status, data);
        if ("billed" in data) show("terminal", `${m.event} (billed: ${data.billed})`);
      }
    }
    if (m.event === "message.delta") markRunning();
  },
  async stop(current) {
    const answer = await call("POST", `/v1/sessions/${current.sessionId}/responses/${current.id}/cancel`);
    log(`cancel answered ${answer.status} ${JSON.stringify(answer.json)}`);
    if (answer.status === 202) setStatus("cancelling");
  },
  async reconnect(current) {
    await follow(
      current,
      "GET",
      `/v1/sessions/${current.sessionId}/responses/${current.id}/events`,
      undefined,
      current.lastEventId ? { "Last-Event-ID": current.lastEventId } : {},
      (m) => sessions.onEvent(current, m),
    );
  },
};

const llm = {
  label: "LLM: background response (Responses API)",
  resumable: true,
  ledger: true,
  async start(current, prompt) {
    current.onHeaders = null;
    await follow(
      current,
      "POST",
      "/api/v1/llm/responses",
      { model: LLM_MODEL, input: prompt, background: true, stream: true },
      {},
      (m) => llm.onEvent(current, m),
    );
  },
  onEvent(current, m) {
    const data = m.data || {};
    if (typeof data.sequence_number === "number") current.lastEventId = String(data.sequence_number);
    if (data.response && data.response.id && !current.id) {
      current.id = data.response.id;
      show("turn-id", current.id);
      buttons({ start: false, stop: true, reconnect: true });
    }
    if (m.event === "response.output_text.delta") {
      appendOutput(data.delta || "");
      markRunning();
    } else if (data.response && data.response.status) {
      const status = data.response.status;
      if (["completed", "cancelled", "failed", "incomplete"].includes(status)) {
        terminal(current, m.event, status, data.response);
        current.usage = data.response.usage;
      } else setStatus(status);
    }
  },
  async stop(current) {
    const answer = await call("POST", `/api/v1/llm/responses/${current.id}/cancel`);
    log(`cancel answered ${answer.status}: status ${answer.json && answer.json.status}`);
    if (answer.ok && answer.json && answer.json.usage) show("usage", compactUsage(answer.json.usage));
  },
  async reconnect(current) {
    const after = current.lastEventId ? `&starting_after=${current.lastEventId}` : "";
    await follow(current, "GET", `/api/v1/llm/responses/${current.id}?stream=true${after}`, undefined, {}, (m) =>
      llm.onEvent(current, m),
    );
  },
};

// Omni and tasks are polled, as their SDKs do: the "stream" is the polling, and it ends when
// the poll sees a final status. Reconnect restarts the polling (a poll is its own resume).
function poller(current, read) {
  const token = {};
  current.poll = token;
  const tick = async () => {
    if (current.gone || current.poll !== token) return;
    let final = false;
    try {
      final = await read();
    } catch (error) {
      return fail(String(error));
    }
    if (final) streamEnded(current);
    else if (!current.gone && current.poll === token) setTimeout(tick, POLL_MS);
  };
  tick();
}

const omni = {
  label: "Omni: thread, polled response",
  resumable: true,
  ledger: true,
  ledgerLags: true,
  async start(current, prompt) {
    const created = await call("POST", "/v1/omni-ai/threads", { type: "instant", account_id: accountId, text: prompt });
    if (!created.ok) return fail(errorText(created));
    current.id = created.json.data.response_id;
    current.threadId = created.json.data.thread_id;
    show("turn-id", current.id);
    buttons({ start: false, stop: true, reconnect: true });
    omni.poll(current);
  },
  poll(current) {
    poller(current, async () => {
      const answer = await fetch(`/v1/omni-ai/responses/${current.id}?account_id=${accountId}`, { headers: authHeaders() });
      const body = await jsonOrText(answer);
      if (!answer.ok) throw new Error(errorText({ status: answer.status, json: body }));
      const response = body.data;
      const text = ((response.content && response.content.parts) || []).map((p) => p.text || "").join("");
      if (text.length !== $("output").textContent.length) {
        setOutput(text);
        show("counts", `${text.split(/\s+/).filter(Boolean).length} words`);
      }
      const status = response.status;
      if (["succeeded", "failed", "canceled"].includes(status)) {
        terminal(current, `status: ${status}`, status === "canceled" ? "cancelled" : status, response);
        return true;
      }
      if ($("status").dataset.status !== "cancelling") setStatus(status);
      return false;
    });
  },
  async stop(current) {
    const answer = await call("DELETE", `/v1/omni-ai/responses/${current.id}?account_id=${accountId}`);
    log(`cancel answered ${answer.status} ${JSON.stringify(answer.json && answer.json.data)}`);
    if (answer.ok && answer.json.data.canceled) setStatus("cancelling");
  },
  async reconnect(current) {
    omni.poll(current);
  },
};

const tasks = {
  label: "Tasks: async job, charged then refunded",
  resumable: true,
  ledger: true,
  async start(current, prompt) {
    const created = await call("POST", "/v1/tasks", { capability: "text.generate", model: "auto", input: { prompt } });
    if (!created.ok) return fail(errorText(created));
    current.id = created.json.task_id;
    show("turn-id", current.id);
    setStatus(created.json.status);
    buttons({ start: false, stop: true, reconnect: true });
    tasks.poll(current);
  },
  poll(current) {
    poller(current, async () => {
      const answer = await fetch(`/v1/tasks/${current.id}`, { headers: authHeaders() });
      const task = await jsonOrText(answer);
      if (!answer.ok) throw new Error(errorText({ status: answer.status, json: task }));
      const text = (task.output && task.output.text) || "";
      if (text.length !== $("output").textContent.length) setOutput(text);
      if (task.progress && task.progress.message) show("counts", task.progress.message);
      if (["succeeded", "failed", "cancelled"].includes(task.status)) {
        terminal(current, `status: ${task.status}`, task.status, task);
        current.task = task;
        return true;
      }
      setStatus(task.cancel_requested_at ? "cancelling" : task.status);
      return false;
    });
  },
  async stop(current) {
    const answer = await call("POST", `/v1/tasks/${current.id}/cancel`, { reason: "Stopped from the playground" });
    log(`cancel answered ${answer.status}: status ${answer.json && answer.json.status}`);
  },
  async reconnect(current) {
    tasks.poll(current);
  },
};

const chat = {
  label: "Chat: sign-in, confirm or cancel an action",
  cookie: true,
  resumable: false,
  ledger: false,
  async start(current, prompt) {
    const body = { message: prompt };
    if (chat.threadId) body.thread_id = chat.threadId;
    current.onHeaders = () => buttons({ start: false, stop: true, reconnect: false });
    await follow(current, "POST", "/chat/stream", body, {}, (m) => chat.onEvent(current, m));
  },
  onEvent(current, m) {
    const data = (m.data && m.data.data) || {};
    if (data.thread_id) {
      current.id = chat.threadId = data.thread_id;
      show("turn-id", data.thread_id);
    }
    if (m.event === "token") {
      appendOutput(data.text || "");
      markRunning();
    } else if (m.event === "confirmation_required") {
      $("confirmation-message").textContent = data.confirmation_message || data.message || "Confirm?";
      $("confirmation-message").hidden = false;
      $("confirmation").hidden = false;
      setStatus("pending");
      show("action", "pending");
    } else if (m.event === "done" || m.event === "cancelled" || m.event === "error") {
      const status = m.event === "done" ? (data.status || "completed") : m.event === "cancelled" ? "cancelled" : "failed";
      if (!(m.event === "done" && $("status").dataset.status === "pending")) setStatus(status);
      current.terminal = m.event;
      show("terminal", m.event);
      show("billing", "billed: false (the chat dialect bills nothing; no ledger entries)");
    }
  },
  async stop(current) {
    const answer = await call("POST", "/chat/cancel", { thread_id: current.id });
    log(`cancel answered ${answer.status} ${JSON.stringify(answer.json)}`);
  },
  async decide(current, path) {
    const answer = await call("POST", path, { thread_id: current.id });
    if (!answer.ok) return fail(errorText(answer));
    $("confirmation").hidden = true;
    setStatus(answer.json.status);
    show("terminal", answer.json.response || answer.json.status);
    const thread = await call("GET", `/chat/threads/${current.id}`);
    const actions = (thread.ok && thread.json.actions) || [];
    const last = actions[actions.length - 1];
    show("action", last ? `${last.status}: ${last.type} "${last.summary}" (${last.id})` : answer.json.status);
    $("action").dataset.status = last ? last.status : answer.json.status;
  },
};

const DIALECTS = { sessions, llm, omni, tasks, chat };
