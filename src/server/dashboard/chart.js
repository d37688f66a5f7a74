// A stacked area chart of running cores per group (SVG built with DOM
// calls, no markup parsed), its axis rounded up to 1, 2 or 5 × 10^n.
'use strict';
import { el } from './lib.js';

var COLOURS = ['#2457c5', '#e07b00', '#067647', '#b42318', '#7a5af8', '#0e9384', '#c11574', '#667085'];
var SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs) {
  var e = document.createElementNS(SVG, tag);
  Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
  return e;
}

/** The smallest 1, 2 or 5 × 10^n at or above `v` (at least 1). Pure. */
export function niceCeil(v) {
  if (!(v > 1)) return 1;
  var p = Math.pow(10, Math.floor(Math.log10(v)));
  var steps = [1, 2, 5, 10];
  for (var i = 0; i < steps.length; i++) if (steps[i] * p >= v - 1e-9) return steps[i] * p;
  return 10 * p;
}

/** Draw `timeline` (GET /v1/usage) into `box`. */
export function chart(box, timeline) {
  box.replaceChildren();
  var groups = Object.keys(timeline.groups).sort();
  var n = groups.length ? timeline.groups[groups[0]].length : 0;
  // drawn at the box's own width in pixels: text keeps its size on a phone
  var W = Math.max(280, Math.round(box.clientWidth || 800)), H = 200, L = 40, B = 20;
  var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + (H + B), width: W, height: H + B, role: 'img', 'aria-label': 'running cores by group' });
  var totals = [];
  for (var i = 0; i < n; i++) totals.push(groups.reduce(function (s, g) { return s + (timeline.groups[g][i] || 0); }, 0));
  var max = niceCeil(Math.max.apply(null, totals.concat([0])));
  var x = function (i) { return L + (n <= 1 ? 0 : (i * (W - L)) / (n - 1)); };
  var y = function (v) { return H - (v / max) * (H - 10); };
  [0, max / 2, max].forEach(function (v) {
    root.appendChild(svg('line', { x1: L, x2: W, y1: y(v), y2: y(v), stroke: '#d9dee7' }));
    var t = svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', 'font-size': 12, fill: '#667085' });
    t.textContent = String(Math.round(v * 10) / 10);
    root.appendChild(t);
  });
  var base = new Array(n).fill(0);
  groups.forEach(function (g, gi) {
    var top = base.map(function (b, i) { return b + (timeline.groups[g][i] || 0); });
    var pts = top.map(function (v, i) { return x(i) + ',' + y(v); });
    var back = base.map(function (v, i) { return x(i) + ',' + y(v); }).reverse();
    root.appendChild(svg('polygon', { points: pts.concat(back).join(' '), fill: COLOURS[gi % COLOURS.length], 'fill-opacity': 0.75, 'data-group': g }));
    base = top;
  });
  var label = svg('text', { x: W, y: H + 15, 'text-anchor': 'end', 'font-size': 12, fill: '#667085' });
  label.textContent = 'now';
  root.appendChild(label);
  var first = svg('text', { x: L, y: H + 15, 'font-size': 12, fill: '#667085' });
  first.textContent = '-' + Math.round((n * timeline.stepSec) / 60) + ' min';
  root.appendChild(first);
  box.appendChild(root);
  var legend = el('div', { className: 'legend' });
  if (groups.length === 0) legend.appendChild(el('span', { className: 'empty', text: 'nothing ran in the last 30 minutes' }));
  groups.forEach(function (g, gi) {
    legend.appendChild(el('span', { className: 'trunc-inline', title: g }, [el('i', { colour: COLOURS[gi % COLOURS.length] }), g]));
  });
  box.appendChild(legend);
}
