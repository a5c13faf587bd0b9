// The cross-entropy playground. It computes nothing itself: every number shown comes from the
// service's /v1 endpoints (cross-entropy, softmax); this script collects the inputs, posts them and
// draws the answers as inline SVG. No third-party code, no request to any other host.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const OUTPUTS = ["losses", "softmax", "log_softmax", "grad", "target_probability", "predictions", "accuracy", "entropy"];
  const CURVE_MAX = 5; // the -log p chart's top: p = exp(-5) = 0.0067
  const EXAMPLES = {
    "three-class": {
      mode: "logits",
      classes: ["cat", "dog", "horse"],
      rows: [
        { values: [-1, 0.5, 2], target: 1 },
        { values: [-1, 0.5, 3], target: 2 },
      ],
      note:
        "The article's 3-class example, which it checks against PyTorch: two samples, a dog " +
        "(class 1) and a horse (class 2), as raw scores (logits). Softmax turns each row into " +
        "probabilities; the loss is −log of the true class's. Drag a slider and watch both move.",
    },
    fashion: {
      mode: "probabilities",
      classes: [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
      ],
      rows: [
        {
          values: [0.1058, 0.1043, 0.0988, 0.1066, 0.0875, 0.0881, 0.1027, 0.1046, 0.1057, 0.0958],
          target: 4,
        },
      ],
      note:
        "The article's Fashion-MNIST prediction by a half-trained network, as probabilities: the " +
        "image is a coat (class 4), which gets only 0.0875, so the loss is −log 0.0875 = 2.4361. " +
        "Give the coat more (and another class less, so that they still sum to 1) to see it fall.",
    },
  };

  const state = {
    classes: [],
    rows: [], // {values: (number|null)[], target: number}
    mode: "logits",
    reduction: "mean",
    smoothing: 0,
    temperature: 1,
    ignoreIndex: -100,
    useWeights: false,
    weights: [],
    showGrad: false,
    apiKey: "",
  };
  let lastGood = null; // {result, view, body}
  let sequence = 0;
  let timer = null;
  let curvePoints = null;
  let rowViews = [];
  let answered = 0; // answers shown so far, on <body data-answered>: the browser tests wait on it

  const $ = (id) => document.getElementById(id);
  const fixed = (value) => (value === null || value === undefined ? "—" : value.toFixed(4));
  const minus = (text) => text.replace(/^-/, "−");

  function svg(name, attributes, parent) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
    if (parent) parent.appendChild(element);
    return element;
  }

  function html(name, attributes, parent, text) {
    const element = document.createElement(name);
    for (const [key, value] of Object.entries(attributes || {})) element.setAttribute(key, String(value));
    if (text !== undefined) element.textContent = text;
    if (parent) parent.appendChild(element);
    return element;
  }

  function endpoint(path) {
    return new URL(path, document.baseURI).href;
  }

  function parseNumber(input) {
    // An empty or unreadable entry is sent as null: the service says what is wrong with it.
    if (input.value.trim() === "" || input.validity.badInput) return null;
    return Number(input.value);
  }

  // ---- the request -------------------------------------------------------------------------------

  function requestBody() {
    const body = {};
    body[state.mode] = state.rows.map((row) => row.values);
    body.target = state.rows.map((row) => row.target);
    if (state.reduction !== "mean") body.reduction = state.reduction;
    if (state.smoothing !== 0) body.label_smoothing = state.smoothing;
    if (state.ignoreIndex !== -100) body.ignore_index = state.ignoreIndex;
    if (state.useWeights) body.weight = state.weights;
    body.outputs = OUTPUTS;
    return body;
  }

  async function post(path, body) {
    const headers = { "content-type": "application/json", accept: "application/json" };
    if (state.apiKey) headers.authorization = "Bearer " + state.apiKey;
    let response;
    try {
      response = await fetch(endpoint(path), { method: "POST", headers, body: JSON.stringify(body) });
    } catch (error) {
      return { problem: { title: "Service unreachable", detail: "the page could not reach the service (" + error.message + ")" } };
    }
    let payload = null;
    try {
      payload = await response.json();
    } catch (error) {
      payload = null;
    }
    if (!response.ok) {
      const problem = payload && typeof payload === "object" ? payload : {};
      return {
        problem: {
          status: response.status,
          title: problem.title || response.statusText,
          detail: problem.detail || "the service answered " + response.status + " without a problem description",
          errors: Array.isArray(problem.errors) ? problem.errors : [],
        },
      };
    }
    return { value: payload };
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(compute, 80);
  }

  async function compute() {
    const mine = ++sequence;
    const body = requestBody();
    showCode(body);
    document.body.dataset.state = "computing";
    const answer = await post("v1/cross-entropy", body);
    let view = null;
    if (!answer.problem && state.mode === "logits" && state.temperature !== 1) {
      view = await post("v1/softmax", { logits: body.logits, temperature: state.temperature });
    }
    if (mine !== sequence) return; // a newer edit is on its way
    const problem = answer.problem || (view && view.problem);
    if (problem) {
      showProblem(problem);
      document.body.dataset.state = "problem";
    } else {
      hideProblem();
      lastGood = { result: answer.value, view: view ? view.value : null, body };
      paint();
      document.body.dataset.state = "ready";
    }
    document.body.dataset.answered = String(++answered);
  }

  // ---- problems ----------------------------------------------------------------------------------

  function showProblem(problem) {
    const box = $("problem");
    box.replaceChildren();
    const heading = problem.status ? "The service refused this input (" + problem.status + " " + problem.title + ")" : problem.title;
    html("p", { class: "problem-title" }, box, heading);
    html("p", { class: "problem-detail", "data-detail": "" }, box, problem.detail);
    if (problem.errors && problem.errors.length > 1) {
      const list = html("ul", {}, box);
      for (const error of problem.errors) html("li", {}, list, error.msg);
    }
    if (problem.status === 401) {
      html("p", {}, box, "Enter a key in the API key field above.");
    }
    if (lastGood) html("p", { class: "note" }, box, "The charts below, greyed, show the last input the service accepted.");
    box.hidden = false;
    document.querySelectorAll(".results").forEach((element) => element.classList.add("stale"));
    markInvalid(problem.errors || []);
  }

  function hideProblem() {
    $("problem").hidden = true;
    document.querySelectorAll(".results").forEach((element) => element.classList.remove("stale"));
    markInvalid([]);
  }

  function fieldOf(loc) {
    // The input a problem's location names, if the page has one for it.
    if (!Array.isArray(loc)) return null;
    const [name, first, second] = loc;
    if (name === state.mode && loc.length === 3) return $("value-" + first + "-" + second);
    if (name === "weight" && loc.length === 2) return $("weight-" + first);
    const single = { label_smoothing: "smoothing", ignore_index: "ignore-index", temperature: "temperature" };
    return single[name] ? $(single[name]) : null;
  }

  function markInvalid(errors) {
    document.querySelectorAll("[aria-invalid]").forEach((element) => element.removeAttribute("aria-invalid"));
    for (const error of errors) {
      const field = fieldOf(error.loc);
      if (field) field.setAttribute("aria-invalid", "true");
    }
  }

  // ---- building the rows -------------------------------------------------------------------------

  function sliderRange() {
    return state.mode === "logits" ? { min: -10, max: 10, step: 0.1 } : { min: 0, max: 1, step: 0.001 };
  }

  function buildRows() {
    const container = $("rows");
    container.replaceChildren();
    rowViews = state.rows.map((row, r) => buildRow(container, row, r));
    $("remove-row").disabled = state.rows.length <= 1;
    $("legend").textContent =
      "Bars: the softmax (the probability of each class). The true class is highlighted." +
      (state.mode === "logits" && state.temperature !== 1 ? " The black tick: the softmax at temperature " + state.temperature + "." : "") +
      (state.showGrad ? " Gradient: how the loss changes with each " + (state.mode === "logits" ? "logit" : "probability") + "; gradient descent moves it the other way." : "");
  }

  function buildRow(container, row, r) {
    const section = html("section", { class: "panel sample", "aria-labelledby": "sample-" + r }, container);
    const head = html("div", { class: "sample-head" }, section);
    html("h3", { id: "sample-" + r }, head, "Sample " + (r + 1));
    const targetLabel = html("label", { class: "target" }, head, "True class ");
    const select = html("select", { "aria-label": "True class of sample " + (r + 1) }, targetLabel);
    state.classes.forEach((name, c) => html("option", { value: c }, select, c + ": " + name));
    if (state.ignoreIndex < 0 || state.ignoreIndex >= state.classes.length) {
      html("option", { value: state.ignoreIndex }, select, state.ignoreIndex + ": ignored (ignore_index)");
    }
    select.value = String(row.target);
    select.addEventListener("change", () => {
      row.target = Number(select.value);
      buildRows();
      if (lastGood) paint();
      schedule();
    });
    const facts = html("p", { class: "facts results" }, head);

    const grid = html("div", { class: "classes results" + (state.showGrad ? " with-grad" : "") }, section);
    const header = html("div", { class: "class-row header", "aria-hidden": "true" }, grid);
    html("span", {}, header, "class");
    html("span", {}, header, state.mode);
    html("span", {}, header, "");
    html("span", {}, header, state.mode === "logits" ? "softmax" : "probability used");
    html("span", {}, header, "");
    if (state.showGrad) html("span", {}, header, "gradient");
    const range = sliderRange();
    const cells = state.classes.map((name, c) => {
      const line = html("div", { class: "class-row" + (c === row.target ? " is-target" : "") }, grid);
      const nameCell = html("span", { class: "name-cell" }, line);
      html("label", { for: "value-" + r + "-" + c, class: "class-name" }, nameCell, name);
      if (c === row.target) html("span", { class: "badge" }, nameCell, "true class");
      const number = html("input", {
        id: "value-" + r + "-" + c, type: "number", step: "any", class: "value",
        value: row.values[c] === null ? "" : row.values[c],
      }, line);
      const slider = html("input", {
        type: "range", min: range.min, max: range.max, step: range.step, class: "slider",
        value: row.values[c] === null ? 0 : row.values[c],
        "aria-label": name + ", sample " + (r + 1) + ", " + state.mode.replace(/s$/, "") + " (slider)",
      }, line);
      number.addEventListener("input", () => {
        row.values[c] = parseNumber(number);
        if (row.values[c] !== null) slider.value = row.values[c];
        schedule();
      });
      slider.addEventListener("input", () => {
        number.value = slider.value;
        row.values[c] = Number(slider.value);
        schedule();
      });
      const bar = svg("svg", { class: "bar", viewBox: "0 0 200 20", preserveAspectRatio: "none", "aria-hidden": "true" }, line);
      svg("rect", { x: 0, y: 3, width: 200, height: 14, class: "track" }, bar);
      const fill = svg("rect", { x: 0, y: 3, width: 0, height: 14, class: "fill" }, bar);
      const tick = svg("rect", { x: 0, y: 0, width: 2.5, height: 20, class: "tick", visibility: "hidden" }, bar);
      const probability = html("span", { class: "probability" }, line, "");
      let grad = null;
      if (state.showGrad) {
        const cell = html("span", { class: "grad" }, line);
        const gradBar = svg("svg", { class: "gradbar", viewBox: "0 0 120 20", preserveAspectRatio: "none", "aria-hidden": "true" }, cell);
        svg("rect", { x: 59.5, y: 0, width: 1, height: 20, class: "axis" }, gradBar);
        const gradFill = svg("rect", { x: 60, y: 4, width: 0, height: 12 }, gradBar);
        const gradText = html("span", { class: "grad-text" }, cell, "");
        grad = { fill: gradFill, text: gradText };
      }
      return { fill, tick, probability, grad, number, slider };
    });
    return { facts, cells };
  }

  function buildWeights() {
    const box = $("weights");
    box.replaceChildren();
    box.hidden = !state.useWeights;
    if (!state.useWeights) return;
    html("p", { class: "weights-title" }, box, "Class weights");
    state.classes.forEach((name, c) => {
      const label = html("label", { class: "weight" }, box, name + " ");
      const input = html("input", {
        id: "weight-" + c, type: "number", step: "any", min: "0", value: state.weights[c],
        "aria-label": "Weight of " + name,
      }, label);
      input.addEventListener("input", () => {
        state.weights[c] = parseNumber(input);
        schedule();
      });
    });
  }

  // ---- painting an answer ------------------------------------------------------------------------

  function paint() {
    const { result, view } = lastGood;
    const loss = $("batch-loss");
    if (result.loss === null) {
      loss.textContent = state.reduction === "none" ? "one per sample" : "undefined";
    } else {
      loss.textContent = fixed(result.loss);
    }
    const counted = result.count === 1 ? "the one counted sample's loss" : "the " + result.count + " counted samples' losses";
    const notes = {
      mean: "The mean of " + counted + (state.useWeights ? ", weighted: divided by the sum of their true classes' weights" : "") + ".",
      sum: "The sum of " + counted + ".",
      none: "Reduction none: no single number, each sample keeps its own loss.",
    };
    $("batch-note").textContent =
      result.loss === null && state.reduction !== "none"
        ? "No sample counts (every target is ignored, or their weights sum to 0): PyTorch gives NaN here."
        : notes[state.reduction];
    $("batch-accuracy").textContent =
      result.accuracy === null ? "undefined (no sample counts)" : fixed(result.accuracy);

    let largestGrad = 0;
    for (const row of result.grad) for (const value of row) largestGrad = Math.max(largestGrad, Math.abs(value));
    state.rows.forEach((row, r) => {
      const parts = rowViews[r];
      // Until the answer for a new row arrives, that row keeps its inputs and no numbers.
      if (!parts || r >= result.softmax.length || result.softmax[r].length !== state.classes.length) return;
      const target = result.target_probability[r];
      parts.facts.replaceChildren();
      if (target === null) {
        html("span", { class: "fact" }, parts.facts, "ignored: its target equals ignore_index, its loss is 0");
      } else {
        const logp = -result.log_softmax[r][row.target];
        html("span", { class: "fact" }, parts.facts, "p(true class) = " + fixed(target));
        html("span", { class: "fact" }, parts.facts, "−log p = " + minus(fixed(logp)));
        const factLoss = html("span", { class: "fact strong" }, parts.facts, "loss = ");
        html("span", { class: "row-loss" }, factLoss, minus(fixed(result.losses[r])));
        const right = result.predictions[r] === row.target;
        const verdict = html("span", { class: "fact" }, parts.facts, "top class: ");
        html("span", { class: "row-correct" }, verdict, right ? "right" : "wrong (class " + result.predictions[r] + ")");
      }
      const factEntropy = html("span", { class: "fact" }, parts.facts, "entropy = ");
      html("span", { class: "row-entropy" }, factEntropy, fixed(result.entropy[r]) + " nats");
      parts.cells.forEach((cell, c) => {
        const p = result.softmax[r][c];
        cell.fill.setAttribute("width", String(200 * p));
        cell.probability.textContent = fixed(p);
        if (view) {
          cell.tick.setAttribute("x", String(Math.min(197.5, 200 * view.softmax[r][c])));
          cell.tick.setAttribute("visibility", "visible");
          cell.probability.textContent = fixed(p) + " (T: " + fixed(view.softmax[r][c]) + ")";
        } else {
          cell.tick.setAttribute("visibility", "hidden");
        }
        if (cell.grad) {
          const g = result.grad[r][c];
          const width = largestGrad > 0 ? (58 * Math.abs(g)) / largestGrad : 0;
          cell.grad.fill.setAttribute("x", String(g < 0 ? 60 - width : 60));
          cell.grad.fill.setAttribute("width", String(width));
          cell.grad.fill.setAttribute("class", g < 0 ? "up" : "down");
          cell.grad.text.textContent = minus(fixed(g)) + (g < 0 ? " push up" : g > 0 ? " push down" : "");
        }
      });
    });
    drawCurve();
  }

  // ---- the -log p curve --------------------------------------------------------------------------

  async function loadCurve() {
    // The curve is the service's too: the loss of [p, 1 - p] with class 0 true, for p on a grid.
    const grid = [];
    for (let i = 0; i <= 120; i++) grid.push(Math.exp(-CURVE_MAX * (1 - i / 120)));
    const answer = await post("v1/cross-entropy", {
      probabilities: grid.map((p) => [p, 1 - p]),
      target: grid.map(() => 0),
      reduction: "none",
      outputs: ["losses"],
    });
    if (answer.problem) {
      $("curve").textContent = "The curve could not be computed: " + answer.problem.detail;
      return;
    }
    curvePoints = grid.map((p, i) => [p, answer.value.losses[i]]);
    drawCurve();
  }

  function drawCurve() {
    const box = $("curve");
    if (!curvePoints) return;
    const width = 640, height = 300, left = 48, right = 16, top = 14, bottom = 40;
    const x = (p) => left + p * (width - left - right);
    const y = (loss) => top + (1 - Math.min(loss, CURVE_MAX) / CURVE_MAX) * (height - top - bottom);
    const chart = svg("svg", { viewBox: "0 0 " + width + " " + height, role: "img", class: "curve-chart" });
    const marks = [];
    const title = svg("title", {}, chart);
    for (let tick = 0; tick <= 5; tick++) {
      svg("line", { x1: left, x2: width - right, y1: y(tick), y2: y(tick), class: "gridline" }, chart);
      svg("text", { x: left - 8, y: y(tick) + 4, "text-anchor": "end", class: "label" }, chart).textContent = String(tick);
    }
    for (let tick = 0; tick <= 10; tick += 2) {
      const p = tick / 10;
      svg("text", { x: x(p), y: height - bottom + 18, "text-anchor": "middle", class: "label" }, chart).textContent = p.toFixed(1);
    }
    svg("text", { x: (left + width) / 2, y: height - 4, "text-anchor": "middle", class: "axis-title" }, chart).textContent = "p, the probability of the true class";
    const middle = (top + height - bottom) / 2;
    svg("text", { x: 14, y: middle, "text-anchor": "middle", class: "axis-title", transform: "rotate(-90 14 " + middle + ")" }, chart).textContent = "loss −log p";
    const path = curvePoints.map(([p, loss], i) => (i ? "L" : "M") + x(p).toFixed(2) + " " + y(loss).toFixed(2)).join(" ");
    svg("path", { d: path, class: "curve-line" }, chart);
    if (lastGood) {
      const { result } = lastGood;
      state.rows.forEach((row, r) => {
        const p = result.target_probability[r];
        if (p === null || p === undefined || r >= result.log_softmax.length) return;
        const logp = -result.log_softmax[r][row.target];
        const cx = x(p), cy = y(logp);
        svg("circle", { cx, cy, r: 7, class: "marker" }, chart);
        svg("text", { x: cx, y: cy + 4, "text-anchor": "middle", class: "marker-label" }, chart).textContent = String(r + 1);
        const anchor = p > 0.6 ? "end" : "start";
        const dx = p > 0.6 ? -12 : 12;
        svg("text", { x: cx + dx, y: cy - (p > 0.6 ? 20 : 8), "text-anchor": anchor, class: "marker-text" }, chart).textContent =
          "p = " + fixed(p) + ", −log p = " + minus(fixed(logp)) + (logp > CURVE_MAX ? " (off the chart)" : "");
        marks.push("sample " + (r + 1) + " at p = " + fixed(p) + ", −log p = " + fixed(logp));
      });
    }
    title.textContent = "The curve −log p for p from 0 to 1" + (marks.length ? "; " + marks.join("; ") : "");
    box.replaceChildren(chart);
  }

  // ---- copy as curl / Python ---------------------------------------------------------------------

  function showCode(body) {
    const json = JSON.stringify(body);
    const url = endpoint("v1/cross-entropy");
    const key = state.apiKey ? " \\\n  -H \"authorization: Bearer $XENT_API_KEY\"" : "";
    $("code-curl").textContent =
      "curl -s " + url + " \\\n  -H 'content-type: application/json'" + key + " \\\n  -d '" + json + "'";
    const headers = state.apiKey
      ? '{"content-type": "application/json", "authorization": "Bearer " + os.environ["XENT_API_KEY"]}'
      : '{"content-type": "application/json"}';
    $("code-python").textContent = [
      "import json",
      state.apiKey ? "import os" : null,
      "import urllib.request",
      "",
      "body = " + json.replace(/\bnull\b/g, "None"),
      "request = urllib.request.Request(",
      "    " + JSON.stringify(url) + ",",
      "    data=json.dumps(body).encode(),",
      "    headers=" + headers + ",",
      ")",
      "with urllib.request.urlopen(request) as response:",
      "    answer = json.load(response)",
      'print(answer["loss"], answer["losses"])',
    ].filter((line) => line !== null).join("\n");
  }

  async function copy(id, what) {
    const text = $(id).textContent;
    try {
      await navigator.clipboard.writeText(text);
      $("copied").textContent = what + " copied to the clipboard.";
    } catch (error) {
      $(id).closest("details").open = true;
      const selection = window.getSelection();
      selection.selectAllChildren($(id));
      $("copied").textContent = "The clipboard is not available here: the " + what + " is selected below, copy it with Ctrl+C.";
    }
  }

  // ---- controls ----------------------------------------------------------------------------------

  function loadExample(name) {
    const example = EXAMPLES[name];
    state.classes = example.classes.slice();
    state.rows = example.rows.map((row) => ({ values: row.values.slice(), target: row.target }));
    state.mode = example.mode;
    state.weights = example.classes.map(() => 1);
    lastGood = null;
    document.querySelector('input[name="mode"][value="' + state.mode + '"]').checked = true;
    $("example").value = name;
    $("example-note").textContent = example.note;
    $("temperature").disabled = $("temperature-slider").disabled = state.mode !== "logits";
    buildWeights();
    buildRows();
    schedule();
  }

  function switchMode(mode) {
    if (mode === state.mode) return;
    const previous = state.mode;
    if (!lastGood || document.body.dataset.state === "problem") {
      document.querySelector('input[name="mode"][value="' + previous + '"]').checked = true;
      showProblem({ title: "Fix the input first", detail: "switching between logits and probabilities uses the service's last answer for this input" });
      return;
    }
    // The conversion is the service's: its softmax for probabilities, its log-softmax for logits.
    const source = mode === "probabilities" ? lastGood.result.softmax : lastGood.result.log_softmax;
    state.rows.forEach((row, r) => {
      row.values = source[r].map((value) => Number(value.toFixed(4)));
    });
    state.mode = mode;
    $("temperature").disabled = $("temperature-slider").disabled = mode !== "logits";
    buildRows();
    paint();
    schedule();
  }

  function pairUp(numberId, sliderId, apply) {
    const number = $(numberId), slider = $(sliderId);
    number.addEventListener("input", () => {
      const value = parseNumber(number);
      if (value !== null) slider.value = value;
      apply(value);
    });
    slider.addEventListener("input", () => {
      number.value = slider.value;
      apply(Number(slider.value));
    });
  }

  function wire() {
    $("settings").addEventListener("submit", (event) => {
      event.preventDefault(); // Enter in a field recomputes; nothing is submitted anywhere
      schedule();
    });
    $("example").addEventListener("change", () => loadExample($("example").value));
    document.querySelectorAll('input[name="mode"]').forEach((radio) =>
      radio.addEventListener("change", () => switchMode(radio.value)),
    );
    $("reduction").addEventListener("change", () => {
      state.reduction = $("reduction").value;
      schedule();
    });
    pairUp("smoothing", "smoothing-slider", (value) => {
      state.smoothing = value;
      schedule();
    });
    pairUp("temperature", "temperature-slider", (value) => {
      state.temperature = value;
      buildRows();
      if (lastGood) paint();
      schedule();
    });
    $("ignore-index").addEventListener("input", () => {
      state.ignoreIndex = parseNumber($("ignore-index"));
      buildRows();
      schedule();
    });
    $("use-weights").addEventListener("change", () => {
      state.useWeights = $("use-weights").checked;
      buildWeights();
      schedule();
    });
    $("show-grad").addEventListener("change", () => {
      state.showGrad = $("show-grad").checked;
      buildRows();
      if (lastGood) paint();
    });
    $("api-key").addEventListener("change", () => {
      state.apiKey = $("api-key").value.trim();
      loadCurve();
      schedule();
    });
    $("add-row").addEventListener("click", () => {
      const last = state.rows[state.rows.length - 1];
      state.rows.push({ values: last.values.slice(), target: 0 });
      buildRows();
      schedule();
    });
    $("remove-row").addEventListener("click", () => {
      if (state.rows.length > 1) state.rows.pop();
      buildRows();
      schedule();
    });
    $("copy-curl").addEventListener("click", () => copy("code-curl", "curl command"));
    $("copy-python").addEventListener("click", () => copy("code-python", "Python code"));
  }

  wire();
  loadExample("three-class");
  loadCurve();
})();
