/* The lesson page's behaviour: one screen at a time, the pictures (drawn here from each layer's few
   numbers, so the page carries no SVG per step), the tap/hover highlight, the exercises (answers
   known only as hashes) and the playground. The arithmetic is GroupedConv (conv.js), the file the
   test suite gates against torch. */
(function () {
  "use strict";
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  var SVGNS = "http://www.w3.org/2000/svg";
  var FONT = 14;          // SVG text size in user units; pictures are at most WIDTH wide, so never scaled below it
  var WIDTH = 380;
  document.documentElement.classList.add("js");

  // ---- numbers and hashes (the same rules as conformance/teaching/lesson.py) ----
  function canonical(value) {
    return (Math.round(value * 1000) / 1000 + 0).toFixed(3);
  }
  function hash(key, text) {
    var bytes = new TextEncoder().encode(key + "|" + text), h = 0x811c9dc5;
    for (var i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193) >>> 0;
    return ("0000000" + h.toString(16)).slice(-8);
  }
  function show(value) {
    if (!isFinite(value)) return String(value);
    var text = String(Number(value.toPrecision(7)));
    return text;
  }
  function parse(text) {
    var cleaned = String(text).trim().replace(/\s+/g, "").replace(/,/g, "");
    return cleaned === "" ? NaN : Number(cleaned);
  }

  // ---- screens ----
  function showScreen() {
    var id = decodeURIComponent(location.hash.slice(1)) || "intro";
    var screens = document.querySelectorAll(".screen"), found = false;
    for (var i = 0; i < screens.length; i++) found = found || screens[i].id === id;
    if (!found) id = "intro";
    for (i = 0; i < screens.length; i++) screens[i].classList.toggle("current", screens[i].id === id);
    var toc = document.querySelector(".toc");
    if (toc && location.hash) toc.open = false;
  }
  window.addEventListener("hashchange", function () { showScreen(); window.scrollTo(0, 0); });

  // ---- SVG helpers ----
  function el(name, attrs, text) {
    var node = document.createElementNS(SVGNS, name);
    for (var key in attrs) node.setAttribute(key, attrs[key]);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function svg(width, height, label) {
    var root = el("svg", { viewBox: "0 0 " + width + " " + height, width: width, height: height, role: "img", "aria-label": label });
    root.appendChild(el("title", {}, label));
    return root;
  }
  function figure(root, caption) {
    var fig = document.createElement("figure");
    fig.appendChild(root);
    var cap = document.createElement("figcaption");
    cap.textContent = caption;
    fig.appendChild(cap);
    return fig;
  }
  function colour(g) { return PALETTE[g % PALETTE.length]; }
  function tint(hex, strength) {
    var out = "#";
    for (var i = 1; i < 7; i += 2) {
      var c = parseInt(hex.slice(i, i + 2), 16);
      out += ("0" + Math.round(255 - (255 - c) * strength).toString(16)).slice(-2);
    }
    return out;
  }

  // ---- pictures ----
  // Input channels (left) wired to the output channels (right) that read them, coloured by group.
  function connectivity(layer) {
    var cin = layer.in_channels, cout = layer.out_channels, G = layer.groups;
    var inG = cin / G, outG = cout / G, many = Math.max(cin, cout) > 16;
    var step = 28, top = 14, rows = many ? 12 : Math.max(cin, cout), height = top * 2 + rows * step;
    var inX = 118, outX = 250;
    var root = svg(WIDTH, height, "connectivity: groups = " + G);
    function ys(count) {
      var list = [], span = rows * step;
      for (var i = 0; i < count; i++) list.push(top + (span - count * (span / Math.max(count, 1))) / 2 + (span / count) * (i + 0.5));
      return list;
    }
    if (!many) {
      var iy = ys(cin), oy = ys(cout);
      for (var o = 0; o < cout; o++) {
        var g = Math.floor(o / outG);
        for (var j = 0; j < inG; j++) {
          var c = g * inG + j;
          root.appendChild(el("line", { "class": "wire", "data-out": o, "data-in": c, x1: inX, y1: iy[c], x2: outX, y2: oy[o], stroke: colour(g), "stroke-width": 2 }));
        }
      }
      for (var ci = 0; ci < cin; ci++) {
        var gi = Math.floor(ci / inG);
        root.appendChild(el("circle", { "class": "node", "data-in": ci, cx: inX, cy: iy[ci], r: 8, fill: colour(gi), stroke: "#222" }));
        var inLabel = "in " + ci + (layer.input_values ? " = " + show(layer.input_values[ci]) : "");
        root.appendChild(el("text", { x: inX - 13, y: iy[ci] + 5, "font-size": FONT, "text-anchor": "end" }, inLabel));
      }
      for (o = 0; o < cout; o++) {
        root.appendChild(el("circle", { "class": "node", "data-out": o, cx: outX, cy: oy[o], r: 8, fill: colour(Math.floor(o / outG)), stroke: "#222" }));
        var outLabel = "out " + o + (layer.output_values ? " = " + show(layer.output_values[o]) : "");
        root.appendChild(el("text", { x: outX + 13, y: oy[o] + 5, "font-size": FONT }, outLabel));
      }
    } else {  // one band per group: dozens of single wires would be a smear
      var span = rows * step;
      for (var b = 0; b < G; b++) {
        var a0 = top + b * span / G, a1 = top + (b + 1) * span / G;
        root.appendChild(el("polygon", { "class": "wire", "data-group": b, points: inX + "," + a0 + " " + outX + "," + a0 + " " + outX + "," + a1 + " " + inX + "," + a1, fill: colour(b), "fill-opacity": 0.45 }));
      }
      root.appendChild(el("text", { x: inX - 8, y: top + 12, "font-size": FONT, "text-anchor": "end" }, "in 0"));
      root.appendChild(el("text", { x: inX - 8, y: top + span, "font-size": FONT, "text-anchor": "end" }, "in " + (cin - 1)));
      root.appendChild(el("text", { x: outX + 8, y: top + 12, "font-size": FONT }, "out 0"));
      root.appendChild(el("text", { x: outX + 8, y: top + span, "font-size": FONT }, "out " + (cout - 1)));
    }
    var caption = G === 1 ? "groups = 1: every output channel reads all " + cin + " input channels."
      : "groups = " + G + ": each output channel reads only the " + inG + " input channel" + (inG === 1 ? "" : "s") + " of its group." + (many ? " (" + cin + " → " + cout + " channels, one band per group.)" : "");
    return figure(root, caption + (many ? "" : " Tap an output."));
  }

  // The stored weight's numbers placed where they act: the block-diagonal (rows × columns) matrix.
  function weights(layer) {
    var shape = layer.weight_shape || (layer.transposed ? [layer.in_channels, layer.out_channels / layer.groups] : [layer.out_channels, layer.in_channels / layer.groups]);
    var rowsCount = shape[0], perGroup = shape[1], G = layer.groups, cols = perGroup * G;
    var rowsPerGroup = rowsCount / G;
    var cell = Math.max(6, Math.min(34, Math.floor(290 / Math.max(cols, 1)), Math.floor(340 / Math.max(rowsCount, 1))));
    var left = 62, top = 26, numbers = layer.weight_values && cell >= 30;
    var width = Math.max(left + cols * cell + 8, 260), height = top + rowsCount * cell + 8;
    var root = svg(width, height, "weight matrix");
    var rowName = layer.transposed ? "in " : "out ";
    for (var r = 0; r < rowsCount; r++) {
      var g = Math.floor(r / rowsPerGroup);
      for (var c = 0; c < cols; c++) {
        var inside = Math.floor(c / perGroup) === g;
        root.appendChild(el("rect", { x: left + c * cell, y: top + r * cell, width: cell, height: cell, fill: inside ? tint(colour(g), 0.4) : "#fff", stroke: "#ccc", "stroke-width": 0.6 }));
        if (numbers && inside) {
          var value = layer.weight_values[r * perGroup + (c - g * perGroup)];
          root.appendChild(el("text", { x: left + (c + 0.5) * cell, y: top + (r + 0.5) * cell + 5, "font-size": show(value).length > 3 ? 12 : FONT, "text-anchor": "middle" }, show(value)));
        } else if (numbers) {
          root.appendChild(el("text", { x: left + (c + 0.5) * cell, y: top + (r + 0.5) * cell + 5, "font-size": FONT, "text-anchor": "middle", fill: "#bbb" }, "0"));
        }
      }
      if (rowsCount <= 16) root.appendChild(el("text", { x: left - 6, y: top + (r + 0.5) * cell + 5, "font-size": FONT, "text-anchor": "end" }, rowName + r));
    }
    root.appendChild(el("text", { x: left, y: 16, "font-size": FONT, fill: "#555" }, (layer.transposed ? "output" : "input") + " channels 0 … " + (cols - 1) + " →"));
    var stored = shape.reduce(function (a, b) { return a * b; }, 1), kernel = shape.slice(2).reduce(function (a, b) { return a * b; }, 1);
    var full = rowsCount * cols * kernel;
    var caption = "The weight " + JSON.stringify(shape).replace(/\[/g, "(").replace(/\]/g, ")") + " holds " + stored + " numbers" +
      (G > 1 ? ". Placed where they act they fill the " + G + " diagonal blocks of the " + rowsCount + "×" + cols + " matrix of kernels; the other " + (full - stored) + " entries are always zero." : ": with groups = 1 it is already the full matrix.") +
      (layer.transposed ? " Rows are input channels: a transposed weight is (in, out/G, …)." : "");
    return figure(root, caption);
  }

  // A channel shuffle: output o copies input permutation[o]; crossing wires, no arithmetic.
  function shuffle(layer) {
    var perm = layer.permutation, n = perm.length, step = 30, top = 14, height = top * 2 + n * step;
    var inX = 118, outX = 250, root = svg(WIDTH, height, "channel shuffle: a permutation");
    for (var o = 0; o < n; o++) {
      var c = perm[o];
      root.appendChild(el("line", { "class": "wire", "data-out": o, "data-in": c, x1: inX, y1: top + (c + 0.5) * step, x2: outX, y2: top + (o + 0.5) * step, stroke: colour(o), "stroke-width": 2.5 }));
    }
    for (var i = 0; i < n; i++) {
      var y = top + (i + 0.5) * step;
      root.appendChild(el("circle", { "class": "node", "data-in": i, cx: inX, cy: y, r: 8, fill: "#fff", stroke: "#222" }));
      root.appendChild(el("text", { x: inX - 13, y: y + 5, "font-size": FONT, "text-anchor": "end" }, "in " + i + (layer.input_values ? " = " + show(layer.input_values[i]) : "")));
      root.appendChild(el("circle", { "class": "node", "data-out": i, cx: outX, cy: y, r: 8, fill: "#fff", stroke: "#222" }));
      root.appendChild(el("text", { x: outX + 13, y: y + 5, "font-size": FONT }, "out " + i + (layer.output_values ? " = " + show(layer.output_values[i]) : "")));
    }
    var text = "A channel shuffle is a permutation: each output channel is one input channel, moved. 0 multiply-adds.";
    var G = shuffleGroups(perm);
    if (G) {
      var names = perm.map(function (_, k) { return "c" + k; }), rows = [];
      for (var g = 0; g < G; g++) rows.push("[" + names.slice(g * n / G, (g + 1) * n / G).join(", ") + "]");
      text += " ShuffleNet's recipe: reshape the " + n + " channels to (" + G + ", " + n / G + ") = [" + rows.join(", ") + "], transpose, flatten: [" + perm.map(function (k) { return "c" + k; }).join(", ") + "].";
    }
    return figure(root, text);
  }
  function shuffleGroups(perm) {
    var n = perm.length;
    for (var G = 2; G < n; G++) {
      if (n % G) continue;
      var per = n / G, ok = true;
      for (var o = 0; o < n && ok; o++) ok = perm[o] === (o % G) * per + Math.floor(o / G);
      if (ok) return G;
    }
    return 0;
  }

  function draw(container, layer) {
    container.textContent = "";
    if (layer.permutation) { container.appendChild(shuffle(layer)); return; }
    container.appendChild(connectivity(layer));
    container.appendChild(weights(layer));
  }

  // Tap or hover an output (a node, a sum, a table row): its wires light up, the others fade.
  function highlight(scope, out) {
    var pics = scope.querySelectorAll("svg");
    for (var i = 0; i < pics.length; i++) {
      var wires = pics[i].querySelectorAll(".wire[data-out]");
      if (!wires.length) continue;
      pics[i].classList.toggle("dim", out !== null);
      for (var w = 0; w < wires.length; w++) wires[w].classList.toggle("lit", out !== null && wires[w].getAttribute("data-out") === String(out));
    }
    var rows = scope.querySelectorAll("[data-out]:not(.wire):not(.node)");
    for (var r = 0; r < rows.length; r++) rows[r].classList.toggle("lit", out !== null && rows[r].getAttribute("data-out") === String(out));
  }
  function wireHover(scope) {
    scope.addEventListener("pointerover", function (event) {
      var target = event.target.closest ? event.target.closest("[data-out]") : null;
      if (target && !target.classList.contains("wire")) highlight(scope, target.getAttribute("data-out"));
    });
    scope.addEventListener("pointerleave", function () { highlight(scope, null); });
    scope.addEventListener("click", function (event) {
      var target = event.target.closest ? event.target.closest("[data-out]") : null;
      if (target && !target.classList.contains("wire")) highlight(scope, target.getAttribute("data-out"));
    });
  }

  // ---- exercises ----
  function say(form, text, right) {
    var p = form.querySelector(".feedback");
    p.textContent = text;
    p.className = "feedback " + (right ? "right" : "wrong");
  }
  // The answer, computed only when asked for, by the same (gated) convolution as the playground.
  function reveal(form, data) {
    var c = data.conv, y = GroupedConv.convolve(new Float64Array(c.x), c.xShape, new Float64Array(c.w), c.wShape,
      c.b ? new Float64Array(c.b) : null, c.options);
    var labels = form.querySelectorAll("label"), lines = [];
    for (var i = 0; i < labels.length; i++) lines.push(labels[i].textContent.trim() + " " + show(y.data[i]));
    var pre = form.querySelector(".answer");
    pre.textContent = lines.join("\n");
    pre.hidden = false;
  }
  function exercise(form) {
    var data = JSON.parse(form.getAttribute("data-exercise"));
    var button = form.querySelector("button.reveal");
    button.addEventListener("click", function () { reveal(form, data); });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var boxes = form.querySelectorAll("input[data-index]"), values = [], wrong = [];
      for (var i = 0; i < boxes.length; i++) {
        var v = parse(boxes[i].value);
        if (isNaN(v)) { say(form, "Write a number in every box first.", false); return; }
        values.push(canonical(v));
        if (hash(data.key + "#" + i, canonical(v)) !== data.answers[i]) wrong.push(boxes[i].parentNode.textContent.replace(/=\s*$/, "").trim());
      }
      button.hidden = false;  // predicted once: the answer may now be revealed
      if (!wrong.length) { say(form, "Right: every value is correct.", true); reveal(form, data); return; }
      var mistake = data.mistakes[hash(data.key, values.join(","))];
      if (mistake) { say(form, "Not yet — " + mistake + ".", false); return; }
      say(form, "Not yet: " + (boxes.length - wrong.length) + " of " + boxes.length + " right; look again at " + wrong.join(", ") + ". Which input channels does that output's group read?", false);
    });
  }
  function spot(form) {
    var data = JSON.parse(form.getAttribute("data-spot"));
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var chosen = form.querySelector("input[type=radio]:checked");
      if (!chosen) { say(form, "Pick one of the mistakes first.", false); return; }
      if (hash(data.key, chosen.value) === data.answer) say(form, "Right: that mistake gives exactly these numbers. Work one of them out to see why.", true);
      else say(form, "Not that one: work out output 0 under that mistake and compare.", false);
    });
  }
  function sizeQuestion(form) {
    var data = JSON.parse(form.getAttribute("data-size"));
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var v = parse(form.querySelector("input").value);
      if (isNaN(v)) { say(form, "Write a number first.", false); return; }
      var h = hash(data.key, canonical(v));
      if (h === data.answer) say(form, "Right.", true);
      else if (data.mistakes[h]) say(form, "Not yet — " + data.mistakes[h] + ".", false);
      else say(form, "Not yet: put the numbers into the formula one term at a time.", false);
    });
  }

  // ---- playground ----
  function playground(root) {
    var form = root.querySelector("form.playground");
    function value(name) { return Number(form.elements[name].value); }
    function redraw() {
      var cin = value("in_channels"), cout = value("out_channels"), G = value("groups"), k = value("kernel");
      var s = value("stride"), p = value("padding"), d = value("dilation"), H = value("size"), transposed = form.elements.transposed.checked;
      var message = root.querySelector(".play-message"), pictures = root.querySelector(".play-pictures");
      var digits = root.querySelector(".play-digits");
      var sizeBox = root.querySelector(".play-size"), costBox = root.querySelector(".play-cost");
      message.textContent = "";
      if ([cin, cout, G, k, s, d, H].some(function (v) { return !(v >= 1) || Math.floor(v) !== v; }) || !(p >= 0)) {
        message.textContent = "Every setting must be a whole number (padding may be 0).";
        return;
      }
      if (cin % G || cout % G) {
        message.textContent = "groups = " + G + " must divide both in channels (" + cin + ") and out channels (" + cout + "): torch refuses this layer.";
        pictures.textContent = digits.textContent = sizeBox.textContent = costBox.textContent = "";
        return;
      }
      var out = GroupedConv.outputSize(H, k, s, p, p, d, transposed, 0);
      sizeBox.textContent = transposed
        ? "Output size: (H − 1)·s − 2p + d·(k − 1) + 1 = (" + H + " − 1)·" + s + " − 2·" + p + " + " + d + "·" + (k - 1) + " + 1 = " + out + " (per side, " + out + "×" + out + ")."
        : "Output size: ⌊(H + 2p − d·(k − 1) − 1) / s⌋ + 1 = ⌊(" + H + " + " + 2 * p + " − " + d * (k - 1) + " − 1) / " + s + "⌋ + 1 = " + out + " (per side, " + out + "×" + out + ").";
      if (out <= 0) { message.textContent = "The kernel is larger than the padded input: no output."; costBox.textContent = ""; }
      var weightsCount = cin * (cout / G) * k * k;
      var macs = transposed ? H * H * cin * (cout / G) * k * k : Math.max(out, 0) * Math.max(out, 0) * cout * (cin / G) * k * k;
      costBox.textContent = "Cost: " + weightsCount.toLocaleString("en") + " weights and " + macs.toLocaleString("en") + " multiply-adds; groups = 1 needs " +
        (weightsCount * G).toLocaleString("en") + " and " + (macs * G).toLocaleString("en") + (G > 1 ? " (" + G + "× more)." : " (the same layer).");
      var shape = transposed ? [cin, cout / G, k, k] : [cout, cin / G, k, k];
      var layer = { in_channels: cin, out_channels: cout, groups: G, kernel: [k, k], transposed: transposed, weight_shape: shape };
      digits.textContent = "";
      if (k === 1 && cin <= 8 && cout <= 8) {
        var x = new Float64Array(cin), count = shape.reduce(function (a, b) { return a * b; }, 1), w = new Float64Array(count);
        for (var c = 0; c < cin; c++) x[c] = Math.pow(10, c - 1);
        for (var i = 0; i < count; i++) w[i] = i + 1;
        var y = GroupedConv.convolve(x, [1, cin, 1, 1], w, shape, null, { transposed: transposed, groups: G });
        layer.input_values = Array.prototype.slice.call(x);
        layer.output_values = Array.prototype.slice.call(y.data);
        layer.weight_values = Array.prototype.slice.call(w);
        var p2 = document.createElement("p");
        p2.textContent = "On one pixel holding " + layer.input_values.map(show).join(", ") + " with the weights 1 … " + count + ": y = [" + layer.output_values.map(show).join(", ") + "].";
        digits.appendChild(p2);
      }
      draw(pictures, layer);
    }
    form.addEventListener("input", redraw);
    form.addEventListener("change", redraw);
    wireHover(root);
    redraw();
  }

  function start() {
    var containers = document.querySelectorAll(".pictures[data-layer]");
    for (var i = 0; i < containers.length; i++) draw(containers[i], JSON.parse(containers[i].getAttribute("data-layer")));
    var scopes = document.querySelectorAll("article.case, #intro");
    for (i = 0; i < scopes.length; i++) wireHover(scopes[i]);
    var forms = document.querySelectorAll("form.exercise");
    for (i = 0; i < forms.length; i++) exercise(forms[i]);
    forms = document.querySelectorAll("form.spot");
    for (i = 0; i < forms.length; i++) spot(forms[i]);
    forms = document.querySelectorAll("form.size");
    for (i = 0; i < forms.length; i++) sizeQuestion(forms[i]);
    var play = document.getElementById("playground");
    if (play) playground(play);
    showScreen();
  }
  window.GroupedLesson = { canonical: canonical, hash: hash };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
