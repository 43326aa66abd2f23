/* The lesson's grouped convolution: the six ops of torch.nn.functional (conv1d ... conv_transpose3d)
   in plain JavaScript, with groups, stride, padding (numbers, "same", "valid" and the four padding
   modes), dilation and output_padding. The lesson page and its playground compute with it, and the
   test suite runs this very file under node as a plug-in over the case library
   (tests/test_lesson_js_conv.py), so the page's arithmetic is gated like any implementation's.
   Arrays are flat Float64Arrays in row-major (C) order with a separate shape. */
(function (root) {
  "use strict";

  // A refusal of an invalid layer: the Python plug-in turns it into a ValueError, as torch refuses.
  function refuse(message) {
    var error = new Error(message);
    error.refusal = true;
    return error;
  }

  function perDim(value, dims, name) {
    var list = Array.isArray(value) ? value.slice() : [];
    if (!Array.isArray(value)) for (var i = 0; i < dims; i++) list.push(value);
    if (list.length === 1 && dims > 1) while (list.length < dims) list.push(list[0]);
    if (list.length !== dims) throw refuse(name + " must have " + dims + " values, got " + list.length);
    for (var j = 0; j < dims; j++) {
      if (typeof list[j] !== "number" || !isFinite(list[j]) || Math.floor(list[j]) !== list[j])
        throw refuse(name + " must hold integers");
    }
    return list;
  }

  // The size of each spatial output dimension (conv: floor((H + 2p - d(k-1) - 1)/s) + 1;
  // transposed: (H - 1)s - 2p + d(k-1) + output_padding + 1).
  function outputSize(size, kernel, stride, padBefore, padAfter, dilation, transposed, outputPadding) {
    if (transposed) return (size - 1) * stride - padBefore - padAfter + dilation * (kernel - 1) + (outputPadding || 0) + 1;
    return Math.floor((size + padBefore + padAfter - dilation * (kernel - 1) - 1) / stride) + 1;
  }

  // Where input position p (possibly outside 0 ... n-1) reads from under a padding mode; -1: a zero.
  function source(p, n, mode) {
    if (p >= 0 && p < n) return p;
    if (mode === "zeros") return -1;
    if (mode === "replicate") return p < 0 ? 0 : n - 1;
    if (mode === "circular") return ((p % n) + n) % n;
    if (mode === "reflect") {
      if (n === 1) return 0;
      var period = 2 * (n - 1), q = ((p % period) + period) % period;
      return q < n ? q : period - q;
    }
    throw refuse("unknown padding_mode " + mode);
  }

  function product(list) {
    var total = 1;
    for (var i = 0; i < list.length; i++) total *= list[i];
    return total;
  }

  /* convolve(input, inputShape, weight, weightShape, bias, options) -> {data, shape}
     options: {transposed, stride, padding (number, list, "same" or "valid"), dilation, groups,
     padding_mode, output_padding}. The input has a batch axis: (N, C, *spatial). */
  function convolve(x, xShape, w, wShape, bias, options) {
    options = options || {};
    var transposed = !!options.transposed;
    var dims = wShape.length - 2;
    if (dims < 1 || dims > 3) throw refuse("the weight must have 3 to 5 dimensions, got " + wShape.length);
    if (xShape.length !== dims + 2)
      throw refuse("expected a " + (dims + 2) + "-d input (batched), got " + xShape.length + "-d");
    var groups = options.groups === undefined ? 1 : options.groups;
    if (!(groups >= 1) || Math.floor(groups) !== groups) throw refuse("groups must be a positive integer");
    var stride = perDim(options.stride === undefined ? 1 : options.stride, dims, "stride");
    var dilation = perDim(options.dilation === undefined ? 1 : options.dilation, dims, "dilation");
    var outputPadding = perDim(options.output_padding === undefined ? 0 : options.output_padding, dims, "output_padding");
    var mode = options.padding_mode || "zeros";
    var kernel = wShape.slice(2);
    var batch = xShape[0], inChannels = xShape[1], spatial = xShape.slice(2);
    for (var s = 0; s < dims; s++) {
      if (!(kernel[s] > 0)) throw refuse("kernel size must be positive, got " + kernel[s]);
      if (stride[s] <= 0) throw refuse("stride must be positive");
      if (dilation[s] <= 0) throw refuse("dilation must be positive");
    }
    var before = [], after = [], padding = options.padding === undefined ? 0 : options.padding;
    if (padding === "valid" || padding === "same") {
      if (transposed) throw refuse("padding='" + padding + "' is not supported by transposed convolutions");
      if (padding === "same" && stride.some(function (v) { return v !== 1; }))
        throw refuse("padding='same' is not supported for strided convolutions");
      for (s = 0; s < dims; s++) {
        var total = padding === "same" ? dilation[s] * (kernel[s] - 1) : 0;
        before.push(Math.floor(total / 2));
        after.push(total - Math.floor(total / 2));
      }
    } else if (typeof padding === "string") {
      throw refuse("invalid padding string '" + padding + "'");
    } else {
      before = perDim(padding, dims, "padding");
      for (s = 0; s < dims; s++) if (before[s] < 0) throw refuse("negative padding is not supported");
      after = before.slice();
    }
    if (transposed && mode !== "zeros") throw refuse("only 'zeros' padding mode is supported for transposed convolutions");
    var inPerGroup, outChannels, outPerGroup;
    if (transposed) {
      if (wShape[0] !== inChannels) throw refuse("weight's first axis (" + wShape[0] + ") must equal the input channels (" + inChannels + ")");
      if (inChannels % groups !== 0) throw refuse("in_channels must be divisible by groups");
      inPerGroup = inChannels / groups;
      outPerGroup = wShape[1];
      outChannels = outPerGroup * groups;
      for (s = 0; s < dims; s++) {
        if (outputPadding[s] < 0 || (outputPadding[s] >= stride[s] && outputPadding[s] >= dilation[s]))
          throw refuse("output padding must be smaller than either stride or dilation");
      }
    } else {
      outChannels = wShape[0];
      if (outChannels % groups !== 0) throw refuse("out_channels must be divisible by groups");
      if (inChannels % groups !== 0 || inChannels / groups !== wShape[1])
        throw refuse("expected input with " + wShape[1] * groups + " channels (weight " + JSON.stringify(wShape) + ", groups=" + groups + "), got " + inChannels);
      inPerGroup = wShape[1];
      outPerGroup = outChannels / groups;
      if (outputPadding.some(function (v) { return v !== 0; })) throw refuse("output_padding is for transposed convolutions only");
      if (mode !== "zeros") {
        for (s = 0; s < dims; s++) {
          if (mode === "reflect" && (before[s] >= spatial[s] || after[s] >= spatial[s]))
            throw refuse("reflect padding must be smaller than the input size");
          if (mode === "circular" && (before[s] > spatial[s] || after[s] > spatial[s]))
            throw refuse("circular padding must not exceed the input size");
        }
      }
    }
    if (bias && bias.length !== outChannels) throw refuse("bias must have " + outChannels + " elements, got " + bias.length);
    var outSpatial = [];
    for (s = 0; s < dims; s++) {
      var size = outputSize(spatial[s], kernel[s], stride[s], before[s], after[s], dilation[s], transposed, outputPadding[s]);
      if (size <= 0) throw refuse("the output would be empty: size " + size + " along spatial dimension " + s);
      if (!transposed && spatial[s] + before[s] + after[s] < dilation[s] * (kernel[s] - 1) + 1)
        throw refuse("kernel size can't be greater than the padded input size");
      outSpatial.push(size);
    }
    // Every op runs as 3-d: missing leading spatial dimensions have size 1.
    function three(list, fill) {
      var full = list.slice();
      while (full.length < 3) full.unshift(fill);
      return full;
    }
    var K = three(kernel, 1), S = three(stride, 1), D = three(dilation, 1), P = three(before, 0);
    var I = three(spatial, 1), O = three(outSpatial, 1);
    var out = new Float64Array(batch * outChannels * product(O));
    var inSize = product(I), outSize = product(O), taps = product(K);
    var n, o, c, j, g;
    if (!transposed) {
      for (n = 0; n < batch; n++) {
        for (o = 0; o < outChannels; o++) {
          g = Math.floor(o / outPerGroup);
          var outBase = (n * outChannels + o) * outSize;
          for (var od = 0; od < O[0]; od++) for (var oh = 0; oh < O[1]; oh++) for (var ow = 0; ow < O[2]; ow++) {
            var sum = bias ? bias[o] : 0;
            for (j = 0; j < inPerGroup; j++) {
              c = g * inPerGroup + j;  // the group's offset: output o reads input channels g*C_in/G ...
              var inBase = (n * inChannels + c) * inSize, wBase = (o * inPerGroup + j) * taps;
              for (var kd = 0; kd < K[0]; kd++) {
                var id = source(od * S[0] - P[0] + kd * D[0], I[0], mode);
                if (id < 0) continue;
                for (var kh = 0; kh < K[1]; kh++) {
                  var ih = source(oh * S[1] - P[1] + kh * D[1], I[1], mode);
                  if (ih < 0) continue;
                  for (var kw = 0; kw < K[2]; kw++) {
                    var iw = source(ow * S[2] - P[2] + kw * D[2], I[2], mode);
                    if (iw < 0) continue;
                    sum += x[inBase + (id * I[1] + ih) * I[2] + iw] * w[wBase + (kd * K[1] + kh) * K[2] + kw];
                  }
                }
              }
            }
            out[outBase + (od * O[1] + oh) * O[2] + ow] = sum;
          }
        }
      }
    } else {
      // Transposed: each input element scatters its value times the kernel into the output,
      // `stride` apart; the weight is (in_channels, out_channels/groups, *kernel).
      for (n = 0; n < batch; n++) {
        for (c = 0; c < inChannels; c++) {
          g = Math.floor(c / inPerGroup);
          var xBase = (n * inChannels + c) * inSize;
          for (var xd = 0; xd < I[0]; xd++) for (var xh = 0; xh < I[1]; xh++) for (var xw = 0; xw < I[2]; xw++) {
            var value = x[xBase + (xd * I[1] + xh) * I[2] + xw];
            for (j = 0; j < outPerGroup; j++) {
              o = g * outPerGroup + j;
              var yBase = (n * outChannels + o) * outSize, kBase = (c * outPerGroup + j) * taps;
              for (var td = 0; td < K[0]; td++) {
                var yd = xd * S[0] - P[0] + td * D[0];
                if (yd < 0 || yd >= O[0]) continue;
                for (var th = 0; th < K[1]; th++) {
                  var yh = xh * S[1] - P[1] + th * D[1];
                  if (yh < 0 || yh >= O[1]) continue;
                  for (var tw = 0; tw < K[2]; tw++) {
                    var yw = xw * S[2] - P[2] + tw * D[2];
                    if (yw < 0 || yw >= O[2]) continue;
                    out[yBase + (yd * O[1] + yh) * O[2] + yw] += value * w[kBase + (td * K[1] + th) * K[2] + tw];
                  }
                }
              }
            }
          }
        }
        if (bias) for (o = 0; o < outChannels; o++) {
          var base = (n * outChannels + o) * outSize;
          for (var e = 0; e < outSize; e++) out[base + e] += bias[o];
        }
      }
    }
    return { data: out, shape: [batch, outChannels].concat(outSpatial) };
  }

  var api = { convolve: convolve, outputSize: outputSize, source: source };
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else root.GroupedConv = api;
})(this);
