// The dashboard's shared pieces: the admin API with the token, building
// elements (text only: a hostile string is never parsed as HTML), numbers
// and times rounded for people, and the view held in the URL's hash.
'use strict';

var TOKEN_KEY = 'vmpilot-admin-token';

/** The token of this tab, or null. */
export function token() { return sessionStorage.getItem(TOKEN_KEY); }
/** Keep the token in this tab only. */
export function setToken(t) { if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY); }

var onUnauthorized = function () {};
/** What to do when the server refuses the token (sign out, with its message). */
export function whenUnauthorized(f) { onUnauthorized = f; }

/**
 * Call the admin API: resolves to { data, total, more } (total from
 * X-Total-Count, more when the Link header names a next page); rejects with
 * the server's error message and its code in `code` (VMP_UNAUTHORIZED
 * after a 401, which also signs out).
 */
export function api(method, path, body) {
  var headers = { authorization: 'Bearer ' + token() };
  if (body !== undefined) headers['content-type'] = 'application/json';
  // no-cache: the browser revalidates with the ETag it holds; an unchanged view costs a 304 and a few headers
  return fetch(path, { method: method, headers: headers, cache: 'no-cache', body: body === undefined ? undefined : JSON.stringify(body) }).then(function (res) {
    return res.text().then(function (text) {
      var data = null;
      try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
      if (res.status === 401) {
        onUnauthorized('The token was refused: ' + (data && data.error ? data.error.message : res.status));
        throw apiError('VMP_UNAUTHORIZED', 'unauthorized');
      }
      if (!res.ok) throw apiError(data && data.error ? data.error.code : null, data && data.error ? data.error.message : 'HTTP ' + res.status);
      var total = res.headers.get('x-total-count');
      return { data: data, total: total === null ? null : Number(total), more: /rel="?next"?/.test(res.headers.get('link') || '') };
    });
  });
}

/** An Error with the server's code (null when the reply had none), to branch on instead of its message. */
function apiError(code, message) {
  var e = new Error(message);
  e.code = code;
  return e;
}

/** An element with attributes (`text` sets its text, `title` its hover text) and children (strings become text). */
export function el(tag, attrs, children) {
  var e = document.createElement(tag);
  Object.keys(attrs || {}).forEach(function (k) {
    var v = attrs[k];
    if (v === undefined || v === null || v === false) return;
    if (k === 'text') e.textContent = String(v);
    else if (k === 'className') e.className = v;
    else if (k === 'colour') e.style.background = v; // CSSOM: allowed by the page's CSP, unlike a style attribute
    else if (k === 'onclick') e.addEventListener('click', v);
    else e.setAttribute(k, v === true ? '' : String(v));
  });
  (children || []).forEach(function (c) {
    if (c === null || c === undefined) return;
    e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  });
  return e;
}

/** A cell whose text is cut with an ellipsis when long, the whole of it on hover. */
export function truncCell(text, className) {
  var t = text === null || text === undefined ? '-' : String(text);
  return el('td', { className: 'trunc' + (className ? ' ' + className : ''), title: t }, [el('span', { text: t })]);
}

/** A state as a coloured badge. */
export function badge(state) { return el('span', { className: 'state state-' + state, text: state }); }

/** An integer with thousands separators: 10,000. */
export function int(n) { return n === null || n === undefined ? '-' : Math.round(n).toLocaleString('en-US'); }

/** Core-seconds as core-hours, one decimal. */
export function coreHours(sec) { return ((sec || 0) / 3600).toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 }); }

/** A fraction 0..1 as a whole percentage. */
export function pct(f) { return f === null || f === undefined ? '-' : Math.round(f * 100) + ' %'; }

/** A duration in seconds, in the largest unit that fits: 45 s, 12 min, 3.5 h, 2.1 d. */
export function duration(sec) {
  if (sec === null || sec === undefined) return '-';
  var s = Math.max(0, sec);
  if (s < 60) return Math.round(s) + ' s';
  if (s < 3600) return Math.round(s / 60) + ' min';
  if (s < 86400) return (Math.round(s / 360) / 10) + ' h';
  return (Math.round(s / 8640) / 10) + ' d';
}

/** How long ago a time (ms epoch) was. */
export function ago(t) { return t === null || t === undefined ? 'never' : duration((Date.now() - t) / 1000) + ' ago'; }

/** A time (ms epoch) as the browser's local date and time. */
export function when(t) { return t === null || t === undefined ? '-' : new Date(t).toLocaleString('en-GB'); }

/** The view the URL's hash holds: #/payloads?state=running&page=2 → { view: 'payloads', id: null, q }. */
export function route() {
  var h = location.hash.replace(/^#\/?/, '');
  var i = h.indexOf('?');
  var pathPart = i < 0 ? h : h.slice(0, i);
  var q = new URLSearchParams(i < 0 ? '' : h.slice(i + 1));
  var parts = pathPart.split('/');
  return { view: parts[0] || 'overview', id: parts[1] ? Number(parts[1]) : null, q: q };
}

/** A hash for a view and its query (empty values left out). */
export function href(view, params) {
  var q = new URLSearchParams();
  Object.keys(params || {}).forEach(function (k) { if (params[k] !== '' && params[k] !== null && params[k] !== undefined) q.set(k, params[k]); });
  var s = q.toString();
  return '#/' + view + (s ? '?' + s : '');
}

/** Go to a view: the URL changes, so reload and a shared link show the same. */
export function go(view, params) { location.hash = href(view, params); }

/** A link to a record's detail. */
export function link(view, id, text) { return el('a', { href: '#/' + view + '/' + id, text: text === undefined ? String(id) : text }); }

/** A table in a card that scrolls sideways inside it, never the page. */
export function table(id, headers) {
  return el('div', { className: 'scroll' }, [
    el('table', { id: id }, [el('thead', {}, [el('tr', {}, headers.map(function (h) { return el('th', { text: h }); }))]), el('tbody')]),
  ]);
}

/**
 * Make the headers of `tableEl` that have a key in `keys` (same order as the
 * headers; null: not sortable) buttons that sort by it: the first click
 * sorts by that column (A to Z), the next the other way. `current` is the
 * sort in the URL ("name", "-started", or ''); `onSort(next)` is called with
 * the new one. The sorted header says so (aria-sort and an arrow).
 */
export function sortable(tableEl, keys, current, onSort) {
  var descending = current.charAt(0) === '-';
  var now = descending ? current.slice(1) : current;
  tableEl.querySelectorAll('thead th').forEach(function (th, i) {
    var key = keys[i];
    if (!key) return;
    var label = th.textContent;
    var on = key === now;
    if (on) th.setAttribute('aria-sort', descending ? 'descending' : 'ascending');
    th.replaceChildren(el('button', {
      type: 'button', className: 'sort' + (on ? ' on' : ''), 'data-sort': key,
      title: 'sort by ' + label.toLowerCase() + (on && !descending ? ', largest first' : ''),
      text: label + (on ? (descending ? ' ▼' : ' ▲') : ''),
      onclick: function () { onSort(on && !descending ? '-' + key : key); },
    }));
  });
}

/** Put `rows` in the table's body, or one row saying `emptyText`. */
export function fill(tableEl, rows, emptyText) {
  var body = tableEl.querySelector('tbody');
  var columns = tableEl.querySelectorAll('thead th').length;
  body.replaceChildren();
  if (rows.length === 0) body.appendChild(el('tr', {}, [el('td', { className: 'empty', colspan: String(columns), text: emptyText })]));
  rows.forEach(function (r) { body.appendChild(r); });
}

/** Rows a list page holds. */
export var PAGE = 50;

/** The page number a view's query holds (1 when none or not a page). */
export function pageOf(q) { var p = Number(q.get('page') || '1'); return Number.isInteger(p) && p >= 1 ? p : 1; }

/** "1-50 of 10,000", with previous and next links that change the URL's page. */
export function pager(box, view, params, page, shown, total) {
  var first = shown ? (page - 1) * PAGE + 1 : 0;
  var last = (page - 1) * PAGE + shown;
  var pages = Math.max(1, Math.ceil((total || 0) / PAGE));
  var to = function (p) { var q = Object.assign({}, params); q.page = p > 1 ? String(p) : ''; return href(view, q); };
  box.replaceChildren(
    el('span', { className: 'range', text: total === 0 ? 'none' : int(first) + '-' + int(last) + ' of ' + int(total) }),
    page > 1 ? el('a', { className: 'button', href: to(page - 1), 'data-page': 'prev', text: '‹ Previous' }) : el('span', { className: 'button disabled', text: '‹ Previous' }),
    page < pages ? el('a', { className: 'button', href: to(page + 1), 'data-page': 'next', text: 'Next ›' }) : el('span', { className: 'button disabled', text: 'Next ›' }),
  );
}
