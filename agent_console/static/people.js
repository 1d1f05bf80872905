// The header's availability menu: online, busy or offline, saved as it changes.

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
