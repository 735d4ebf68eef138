/* Progressive enhancement only: every page works without it (CSP: no inline script). */
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // A double click must not send a form twice.
  document.querySelectorAll("form").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (form.dataset.sent === "1") { event.preventDefault(); return; }
      if (!form.hasAttribute("data-upload")) form.dataset.sent = "1";
    });
  });

  // Dialogs (signing PIN + code).
  document.querySelectorAll("[data-open-dialog]").forEach((button) => {
    const dialog = document.getElementById(button.dataset.openDialog);
    if (!dialog) return;
    button.addEventListener("click", () => {
      dialog.showModal();
      const first = dialog.querySelector("input:not([type=hidden])");
      if (first) first.focus();
    });
  });
  document.querySelectorAll("[data-close-dialog]").forEach((button) => {
    button.addEventListener("click", () => button.closest("dialog").close());
  });

  // Select every dossier of the inbox page.
  const all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", () => {
      document.querySelectorAll("input[name=dossier]").forEach((box) => { box.checked = all.checked; });
    });
  }

  // Drag and drop into file inputs, with the list of chosen files.
  document.querySelectorAll("[data-dropzone]").forEach((zone) => {
    const input = zone.querySelector("input[type=file]");
    const list = zone.querySelector("[data-files]");
    const show = () => {
      list.replaceChildren(...Array.from(input.files).map((file) => {
        const item = document.createElement("li");
        item.textContent = `${file.name} (${Math.max(1, Math.round(file.size / 1024))} Ko)`;
        return item;
      }));
    };
    input.addEventListener("change", show);
    zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("over");
      const transfer = new DataTransfer();
      Array.from(input.files).forEach((file) => transfer.items.add(file));
      Array.from(event.dataTransfer.files).forEach((file) => transfer.items.add(file));
      input.files = transfer.files;
      show();
    });
  });

  // Upload with a progress bar.
  document.querySelectorAll("form[data-upload]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!form.checkValidity()) return;
      event.preventDefault();
      if (form.dataset.sent === "1") return;
      form.dataset.sent = "1";
      const box = form.querySelector(".upload-progress");
      const bar = box.querySelector("progress");
      const error = form.querySelector("[data-upload-error]");
      error.textContent = "";
      box.hidden = false;
      const request = new XMLHttpRequest();
      request.open("POST", form.action || window.location.href);
      request.setRequestHeader("Accept", "application/json");
      request.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total);
      });
      request.addEventListener("load", () => {
        let body = {};
        try { body = JSON.parse(request.responseText); } catch (e) { body = {}; }
        if (request.status === 201 && body.location) { window.location = body.location; return; }
        form.dataset.sent = "";
        box.hidden = true;
        error.textContent = body.error || body.detail || `Erreur ${request.status}`;
        error.focus();
      });
      request.addEventListener("error", () => {
        form.dataset.sent = "";
        box.hidden = true;
        error.textContent = "Le serveur ne répond pas : réessayez.";
      });
      request.send(new FormData(form));
    });
  });

  // Batch progress.
  const batch = document.querySelector("[data-batch]");
  if (batch) {
    const bar = batch.querySelector("progress");
    const summary = batch.querySelector("[data-batch-summary]");
    const rows = batch.querySelector("[data-batch-items]");
    const poll = () => {
      fetch(batch.dataset.batch, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then((response) => response.json())
        .then((job) => {
          bar.value = job.done + job.failed;
          summary.textContent = `${job.done} signé(s), ${job.failed} en échec, sur ${job.total}. ${job.status}`;
          rows.replaceChildren(...Object.entries(job.items).map(([id, item]) => {
            const row = document.createElement("tr");
            row.className = item.ok ? "ok" : "ko";
            const name = document.createElement("td");
            const link = document.createElement("a");
            link.href = `/dossiers/${id}`;
            link.textContent = item.title || id;
            name.appendChild(link);
            const result = document.createElement("td");
            result.textContent = `${item.ok ? "✓" : "✗"} ${item.message}`;
            row.append(name, result);
            return row;
          }));
          batch.dataset.status = job.status;
          if (job.status === "queued" || job.status === "running") setTimeout(poll, 700);
        })
        .catch(() => setTimeout(poll, 2000));
    };
    poll();
  }
});
