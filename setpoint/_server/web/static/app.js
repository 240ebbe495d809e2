// Setpoint UI: small progressive enhancements (no framework, no build step). Pages work as plain forms;
// this adds the project switcher, live validation, live rollout remainders and the rule builder.
"use strict";
(function () {
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  let uid = 0;

  // Project switcher: navigate on change.
  document.querySelectorAll("[data-switcher] select").forEach((select) => {
    select.addEventListener("change", () => {
      window.location.href = select.value ? "/p/" + encodeURIComponent(select.value) + "/variables" : "/projects";
    });
  });

  // Destructive one-click forms (delete a label, revoke a key) ask first; without JS they submit as they are.
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });

  // Copy buttons (the new API key).
  document.querySelectorAll("[data-copy]").forEach((button) => {
    button.addEventListener("click", () => {
      const text = document.querySelector(button.dataset.copy).textContent;
      if (navigator.clipboard) navigator.clipboard.writeText(text).then(() => { button.textContent = "Copied"; });
    });
  });

  // New-variable form: the JSON schema only applies to JSON variables.
  const kindChoices = document.querySelectorAll("[data-kind-choice]");
  const schemaField = document.querySelector("[data-schema-field]");
  const syncSchema = () => {
    const checked = document.querySelector("[data-kind-choice]:checked");
    if (schemaField) schemaField.hidden = !checked || checked.value !== "json";
  };
  kindChoices.forEach((c) => c.addEventListener("change", syncSchema));
  syncSchema();

  // New-variable form: the inputs schema only applies to template variables.
  const templateToggle = document.querySelector("[data-template-toggle]");
  const inputsField = document.querySelector("[data-inputs-schema-field]");
  if (templateToggle && inputsField) {
    const syncTemplate = () => { inputsField.hidden = !templateToggle.checked; };
    templateToggle.addEventListener("change", syncTemplate);
    syncTemplate();
  }

  // Value editor: {{fields}} and @{references}@ highlighted (each reference links to its variable).
  const TOKENS = /(\{\{[^{}]*\}\})|@\{\s*([#\/]?)\s*([^{}]*?)\s*\}@/g;
  const renderTemplateView = (view, text) => {
    view.textContent = "";
    let last = 0;
    for (const match of text.matchAll(TOKENS)) {
      if (match.index > last) view.appendChild(document.createTextNode(text.slice(last, match.index)));
      if (match[1]) {
        const mark = document.createElement("mark");
        mark.className = "tpl-field";
        mark.textContent = match[1];
        view.appendChild(mark);
      } else {
        const words = match[3].split(/\s+/).filter((w) => w && !/^(if|unless|each|with|else|this|lookup)$/.test(w));
        const head = (words[words.length - 1] || "").split(".")[0].replace(/^\.\.\//, "");
        const node = head && /^[A-Za-z_][A-Za-z0-9_]*$/.test(head) && match[2] !== "/" ? document.createElement("a") : document.createElement("mark");
        if (node.tagName === "A") {
          node.href = view.dataset.variablesBase + encodeURIComponent(head);
          node.dataset.ref = head;
        }
        node.className = "tpl-ref";
        node.textContent = match[0];
        view.appendChild(node);
      }
      last = match.index + match[0].length;
    }
    if (last < text.length) view.appendChild(document.createTextNode(text.slice(last)));
  };
  document.querySelectorAll("[data-template-view]").forEach((view) => {
    const area = view.closest("form").querySelector("textarea[name=value]");
    const update = () => renderTemplateView(view, area.value);
    area.addEventListener("input", update);
    update();
  });

  // Template variables: preview the draft rendered with sample inputs (the server composes and renders it).
  document.querySelectorAll("[data-template-card]").forEach((card) => {
    const button = card.querySelector("[data-preview]");
    const out = card.querySelector("[data-preview-output]");
    const area = document.querySelector("textarea[name=value]");
    button.addEventListener("click", async () => {
      out.textContent = "…";
      try {
        const response = await fetch(card.dataset.previewUrl, {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
          body: JSON.stringify({ value: area ? area.value : "", inputs: card.querySelector("[data-sample-inputs]").value }),
        });
        const result = await response.json();
        if (result.error) {
          out.className = "preview mono small bad";
          out.textContent = "✗ " + result.error;
          return;
        }
        out.className = "preview mono small ok";
        let text = typeof result.value === "string" ? result.value : JSON.stringify(result.value, null, 2);
        if (result.undeclared && result.undeclared.length) {
          text += "\n\n⚠ not declared in the inputs schema: " + result.undeclared.join(", ");
        }
        out.textContent = text;
      } catch (err) { out.textContent = "✗ the preview failed: " + err; }
    });
  });

  // Value editor: validate against the variable's schema as the user types (before saving).
  document.querySelectorAll("[data-editor]").forEach((form) => {
    const area = form.querySelector("textarea[name=value]");
    const out = form.querySelector(".validation");
    let timer = null;
    let seq = 0;
    const check = async () => {
      const mine = ++seq;
      try {
        const response = await fetch(form.dataset.validateUrl, {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
          body: JSON.stringify({ value: area.value }),
        });
        if (mine !== seq || !response.ok) return;
        const result = await response.json();
        out.className = "validation " + (result.valid ? "ok" : "bad");
        area.setAttribute("aria-invalid", result.valid ? "false" : "true");
        out.textContent = result.valid ? "✓ Valid against the schema" :
          "✗ " + result.errors.map((e) => (e.loc ? e.loc + ": " : "") + e.msg).join("; ");
      } catch (err) { /* offline: the server validates on save anyway */ }
    };
    area.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(check, 250); });
    if (area.value.trim()) check();
  });

  // Rollouts: the code-default remainder, computed live; more than 100% is flagged.
  const colors = ["#3b5bdb", "#0ca678", "#f08c00", "#ae3ec9", "#e8590c", "#1098ad", "#d6336c", "#5c940d"];
  const updateRollout = (box) => {
    const inputs = box.querySelectorAll("[data-weight]");
    let total = 0;
    const bar = box.querySelector("[data-bar]");
    if (bar) bar.replaceChildren();
    inputs.forEach((input, i) => {
      const value = parseFloat(input.value);
      const weight = Number.isFinite(value) && value > 0 ? value : 0;
      total += weight;
      if (bar && weight > 0) {
        const span = document.createElement("span");
        span.style.width = Math.min(weight, 100) + "%";
        // The label's colour in the legend under the bar (same palette, same order).
        const swatch = Array.from(box.querySelectorAll("[data-legend-label]"))
          .find((item) => item.dataset.legendLabel === input.dataset.labelName);
        const legendColour = swatch ? swatch.querySelector("i").style.background : "";
        span.style.background = legendColour || colors[i % colors.length];
        span.title = input.dataset.labelName + " " + weight + "%";
        bar.appendChild(span);
      }
    });
    const out = box.querySelector("[data-remainder]");
    if (!out) return;
    const rounded = Math.round(total * 10000) / 10000;
    if (rounded > 100) {
      out.textContent = "Labels take " + rounded + "%: more than 100%. Lower the weights to save.";
      out.classList.add("over");
    } else {
      out.textContent = "Code default: " + Math.round((100 - rounded) * 10000) / 10000 + "%";
      out.classList.remove("over");
    }
  };
  const wireRollout = (box) => {
    box.querySelectorAll("[data-weight]").forEach((i) => i.addEventListener("input", () => updateRollout(box)));
    updateRollout(box);
  };
  document.querySelectorAll("[data-rollout]").forEach(wireRollout);

  // Rule builder.
  const form = document.querySelector("[data-targeting]");
  if (!form) return;
  const kindFields = JSON.parse(form.dataset.kindFields || "{}");
  const placeholders = { value: "e.g. enterprise (or 10, true)", values: "comma-separated: eu, us", pattern: "regular expression" };
  const renumber = () => {
    const rules = form.querySelectorAll("[data-rules] [data-rule]");
    rules.forEach((rule, i) => { rule.querySelector("[data-rule-number]").textContent = String(i + 1); });
    const none = form.querySelector("[data-no-rules]");
    if (none) none.hidden = rules.length > 0;
  };
  const syncCond = (cond) => {
    const spec = kindFields[cond.querySelector("[data-kind]").value] || {};
    cond.querySelector('[data-part="attribute"]').hidden = !spec.attribute;
    cond.querySelector('[data-part="operand"]').hidden = !spec.operand || spec.operand === "segment";
    cond.querySelector('[data-part="segment"]').hidden = spec.operand !== "segment";
    const operand = cond.querySelector("[data-operand]");
    if (spec.operand && placeholders[spec.operand]) operand.placeholder = placeholders[spec.operand];
    cond.querySelector('[data-part="operand"] label').textContent = spec.operand === "values" ? "Values" : spec.operand === "pattern" ? "Pattern" : "Value";
  };
  const fresh = (templateId) => {
    const node = document.getElementById(templateId).content.firstElementChild.cloneNode(true);
    uid += 1;
    node.querySelectorAll("[id]").forEach((el) => {
      const label = node.querySelector('label[for="' + el.id + '"]');
      el.id = el.id + "-n" + uid;
      if (label) label.htmlFor = el.id;
    });
    return node;
  };
  const wireCond = (cond) => {
    cond.querySelector("[data-kind]").addEventListener("change", () => syncCond(cond));
    cond.querySelector("[data-remove-cond]").addEventListener("click", () => cond.remove());
    syncCond(cond);
  };
  const wireRule = (rule) => {
    rule.querySelectorAll("[data-cond]").forEach(wireCond);
    rule.querySelectorAll("[data-rollout]").forEach(wireRollout);
    rule.querySelector("[data-add-cond]").addEventListener("click", () => {
      const cond = fresh("cond-template");
      rule.querySelector("[data-conds]").appendChild(cond);
      wireCond(cond);
      cond.querySelector("input[name=cond_attribute]").focus();
    });
    rule.querySelector("[data-remove-rule]").addEventListener("click", () => { rule.remove(); renumber(); });
    rule.querySelectorAll("[data-move]").forEach((button) => button.addEventListener("click", () => {
      if (button.dataset.move === "up" && rule.previousElementSibling) rule.parentNode.insertBefore(rule, rule.previousElementSibling);
      if (button.dataset.move === "down" && rule.nextElementSibling) rule.parentNode.insertBefore(rule.nextElementSibling, rule);
      renumber();
      button.focus();
    }));
  };
  form.querySelectorAll("[data-rules] [data-rule]").forEach(wireRule);
  form.querySelector("[data-add-rule]").addEventListener("click", () => {
    const rule = fresh("rule-template");
    form.querySelector("[data-rules]").appendChild(rule);
    wireRule(rule);
    renumber();
    rule.querySelector("input[name=cond_attribute]").focus();
  });
  renumber();
})();

// Segment page: add, remove and reorder rules and clauses, add context kinds, live key counts.
(function () {
  const form = document.querySelector("[data-segment-form]");
  if (!form) return;
  let uid = 0;
  const fresh = (templateId) => {
    const node = document.getElementById(templateId).content.firstElementChild.cloneNode(true);
    uid += 1;
    node.querySelectorAll("[id]").forEach((el) => {
      const label = node.querySelector('label[for="' + el.id + '"]');
      el.id = el.id + "-s" + uid;
      if (label) label.htmlFor = el.id;
    });
    return node;
  };
  const countKeys = (text) => new Set(text.split("\n").map((k) => k.trim()).filter((k) => k)).size;
  const wireKeys = (box) => {
    box.querySelectorAll("[data-keylist]").forEach((list) => {
      const area = list.querySelector("[data-keys]");
      const badge = list.querySelector("[data-count]");
      if (area && badge) area.addEventListener("input", () => { badge.textContent = String(countKeys(area.value)); });
    });
  };
  const renumber = () => {
    const rules = form.querySelectorAll("[data-seg-rules] [data-seg-rule]");
    rules.forEach((rule, i) => { rule.querySelector("[data-rule-number]").textContent = String(i + 1); });
    const none = form.querySelector("[data-no-rules]");
    if (none) none.hidden = rules.length > 0;
  };
  const move = (node, up) => {
    if (up && node.previousElementSibling) node.parentNode.insertBefore(node, node.previousElementSibling);
    if (!up && node.nextElementSibling) node.parentNode.insertBefore(node.nextElementSibling, node);
  };
  const wireClause = (clause) => {
    clause.querySelector("[data-remove-clause]").addEventListener("click", () => clause.remove());
    clause.querySelectorAll("[data-clause-move]").forEach((button) => button.addEventListener("click", () => {
      move(clause, button.dataset.clauseMove === "up");
      button.focus();
    }));
  };
  const wireRule = (rule) => {
    rule.querySelectorAll("[data-clause]").forEach(wireClause);
    rule.querySelector("[data-add-clause]").addEventListener("click", () => {
      const clause = fresh("seg-clause-template");
      rule.querySelector("[data-clauses]").appendChild(clause);
      wireClause(clause);
      clause.querySelector("input[name=clause_attribute]").focus();
    });
    rule.querySelector("[data-remove-rule]").addEventListener("click", () => { rule.remove(); renumber(); });
    rule.querySelectorAll("[data-move]").forEach((button) => button.addEventListener("click", () => {
      move(rule, button.dataset.move === "up");
      renumber();
      button.focus();
    }));
  };
  form.querySelectorAll("[data-seg-rules] [data-seg-rule]").forEach(wireRule);
  form.querySelector("[data-add-seg-rule]").addEventListener("click", () => {
    const rule = fresh("seg-rule-template");
    form.querySelector("[data-seg-rules]").appendChild(rule);
    wireRule(rule);
    renumber();
    rule.querySelector("input[name=clause_attribute]").focus();
  });
  wireKeys(form);
  form.querySelector("[data-add-target]").addEventListener("click", () => {
    const target = fresh("seg-target-template");
    form.querySelector("[data-targets]").appendChild(target);
    wireKeys(target);
    target.querySelector("input[name=target_kind]").focus();
  });
  renumber();
})();

// Times stored in UTC are shown in the browser's local time (without JS they read "... UTC"), and a
// datetime-local input with data-utc-into="name" fills the hidden field "name" with that moment in UTC (ISO
// 8601) when its form is sent, so the server stores UTC whatever the browser's time zone.
(() => {
  document.querySelectorAll("time[data-local]").forEach((el) => {
    const at = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(at.getTime())) {
      el.title = el.textContent;
      el.textContent = at.toLocaleString();
    }
  });
  document.querySelectorAll("input[type=datetime-local][data-utc-into]").forEach((input) => {
    const form = input.form;
    const hidden = form && form.querySelector('input[type=hidden][name="' + input.dataset.utcInto + '"]');
    if (!hidden) return;
    form.addEventListener("submit", () => {
      const when = input.value ? new Date(input.value) : null;  // datetime-local is read in the local zone
      hidden.value = when && !isNaN(when) ? when.toISOString() : "";
    });
  });
})();
