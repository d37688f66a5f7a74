// The vmpilot dashboard: plain browser JavaScript modules, no external
// assets. It signs in with the admin token (kept in sessionStorage, sent as
// a Bearer header), shows the view the URL's hash names and refreshes only
// that view every few seconds: an overview, one page of a list, or one
// record, each a few small requests however large the site.
'use strict';
import { checkPending, whenActed } from './actions.js';
import { el, route, setToken, token, whenUnauthorized } from './lib.js';
import { accounting, overview, payloads, pilots } from './views.js';
import { payloadDetail, pilotDetail } from './detail.js';
import { instanceDetail, instances } from './instances.js';

var POLL_MS = 3000;
var VIEWS = { overview: overview, payloads: payloads, pilots: pilots, instances: instances, accounting: accounting, payload: payloadDetail, pilot: pilotDetail, instance: instanceDetail };
var NAV = [['overview', 'Overview'], ['payloads', 'Payloads'], ['pilots', 'Pilots'], ['instances', 'Instances'], ['accounting', 'Accounting']];
/** A record's view, and the list it belongs to (its nav entry is current). */
var DETAIL_OF = { payload: 'payloads', pilot: 'pilots', instance: 'instances' };
var timer = null;
var refresh = null;
var $ = function (id) { return document.getElementById(id); };

function setStatus(text, bad) {
  $('status').textContent = text;
  $('status').className = bad ? 'error' : '';
}

function tick() {
  if (!refresh) return;
  var mine = refresh;
  checkPending();
  mine().then(function () { if (mine === refresh) setStatus('updated ' + new Date().toLocaleTimeString('en-GB')); })
    .catch(function (err) { if (err.code !== 'VMP_UNAUTHORIZED') setStatus('update failed: ' + err.message, true); });
}

/** Build the view the URL names and refresh it now. */
function mount() {
  var r = route();
  var make = VIEWS[r.view];
  var root = $('view');
  root.replaceChildren();
  document.querySelectorAll('#nav a').forEach(function (a) {
    var current = a.getAttribute('data-view') === r.view || DETAIL_OF[r.view] === a.getAttribute('data-view');
    if (current) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  });
  if (!make || (DETAIL_OF[r.view] && !(r.id > 0))) {
    root.append(el('section', {}, [el('h2', { text: 'No such view' }), el('p', {}, ['Nothing is at this address. ', el('a', { href: '#/overview', text: 'Go to the overview' })])]));
    refresh = null;
    return;
  }
  refresh = make(root, r);
  tick();
}

function show(signedIn) {
  $('signin').hidden = signedIn;
  $('main').hidden = !signedIn;
  $('signout').hidden = !signedIn;
  $('nav').hidden = !signedIn;
}

function signOut(message) {
  setToken(null);
  if (timer) clearInterval(timer);
  timer = null;
  refresh = null;
  show(false);
  $('signin-error').textContent = message || '';
}

function start() {
  show(true);
  mount();
  if (!timer) timer = setInterval(tick, POLL_MS);
}

whenUnauthorized(signOut);
whenActed(function () { tick(); });

document.addEventListener('DOMContentLoaded', function () {
  var nav = $('nav');
  NAV.forEach(function (n) { nav.appendChild(el('a', { href: '#/' + n[0], 'data-view': n[0], text: n[1] })); });
  $('signin').addEventListener('submit', function (ev) {
    ev.preventDefault();
    setToken($('token').value.trim());
    $('token').value = '';
    $('signin-error').textContent = '';
    start();
  });
  $('signout').addEventListener('click', function () { signOut(''); });
  window.addEventListener('hashchange', function () { if (token()) mount(); });
  if (token()) start(); else show(false);
});
