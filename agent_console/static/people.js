// The header's availability menu: online, busy or offline, saved as it changes;
// and colleagues' availability on the Agents page, live from the console socket.

import { api, toast } from "./dom.js";

const select = document.getElementById("availability");
const dot = document.getElementById("me-presence");

if (select) {
  select.addEventListener("change", async () => {
    const before = select.dataset.availability;
    try {
      const answer = await api("/console/availability", {
        method: "POST",
        json: { availability: select.value },
      });
      select.dataset.availability = answer.availability;
      if (dot) dot.dataset.availability = answer.availability;
    } catch (error) {
      select.value = before;
      toast(error.message);
    }
  });
}

const LABELS = { online: "Online", busy: "Busy", offline: "Offline" };

function drawStatus(cell) {
  // What colleagues see: the agent's choice while a console of theirs is open.
  const shown = cell.dataset.online === "yes" ? cell.dataset.choice : "offline";
  cell.className = `status-${shown}`;
  cell.textContent = LABELS[shown] || shown;
}

const me = JSON.parse(document.getElementById("console-data")?.textContent || "{}").me;

window.addEventListener("hub:event", (event) => {
  const frame = event.detail;
  if (frame.type !== "agent_presence" && frame.type !== "agent_availability") return;
  const cell = document.querySelector(`[data-agent-status="${Number(frame.agent_id)}"]`);
  if (frame.type === "agent_availability" && me && frame.agent_id === me.id && select) {
    // Chosen in another tab of ours: this one follows.
    select.value = frame.availability;
    select.dataset.availability = frame.availability;
    if (dot) dot.dataset.availability = frame.availability;
  }
  if (!cell) return;
  if (frame.type === "agent_presence") cell.dataset.online = frame.online ? "yes" : "no";
  else cell.dataset.choice = frame.availability;
  drawStatus(cell);
});
