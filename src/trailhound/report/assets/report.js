/* Trailhound's report: renders the data block of this file with DOM calls only.
   Every string comes from logs an attacker may write: it is only ever set as text
   (textContent, createTextNode) or, for links, as a checked http(s)/mailto URL. */
(function () {
  'use strict';
  var started = performance.now();
  var D = JSON.parse(document.getElementById('th-data').textContent);
  var V = D.values, K = D.keys, SH = D.shapes, DOCS = D.docs, A = D.alerts, R = D.rules, SEV = D.severities;
  var N = DOCS.length;
  var PAGE = 100;
  var TACTICS = ['TA0043', 'TA0042', 'TA0001', 'TA0002', 'TA0003', 'TA0004', 'TA0005', 'TA0006', 'TA0007',
    'TA0008', 'TA0009', 'TA0011', 'TA0010', 'TA0040'];
  var ENTRY_FIELDS = ['process.executable', 'process.parent.executable', 'user.name', 'host.name', 'file.path',
    'source.ip'];
  var app = document.getElementById('app');

  // ---- DOM helpers: text only ------------------------------------------------------------
  var CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;
  function vis(s, keepLines) {
    s = String(s);
    if (!keepLines) s = s.replace(/\n/g, '\u23ce').replace(/\t/g, ' ');
    return s.replace(CONTROL, function (c) { return '\\u' + ('000' + c.charCodeAt(0).toString(16)).slice(-4); });
  }
  function el(tag, cls) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    for (var i = 2; i < arguments.length; i++) add(e, arguments[i]);
    return e;
  }
  function add(parent, child) {
    if (child === null || child === undefined || child === false) return parent;
    if (Array.isArray(child)) { child.forEach(function (c) { add(parent, c); }); return parent; }
    parent.appendChild(typeof child === 'object' ? child : long(vis(child)));
    return parent;
  }
  // A value longer than LONG characters shows its start and a button for the rest: laying out
  // a megabyte of unbroken text would stall the page.
  var LONG = 2000;
  function long(text) {
    if (text.length <= LONG) return document.createTextNode(text);
    var span = el('span'), node = document.createTextNode(text.slice(0, LONG) + '\u2026 '), more = el('button', 'more');
    more.textContent = 'show all ' + text.length + ' characters';
    more.addEventListener('click', function () { node.textContent = text; more.remove(); });
    span.appendChild(node);
    span.appendChild(more);
    return span;
  }
  function pre(text) { var p = el('pre'); p.appendChild(long(vis(text, true))); return p; }
  function link(hash, text, cls) { var a = el('a', cls, text); a.setAttribute('href', '#' + hash); return a; }
  function safeUrl(u) {
    if (typeof u !== 'string' || /[\u0000-\u0020\u007f\\]/.test(u)) return null;
    var url;
    try { url = new URL(u); } catch (e) { return null; }
    if (url.protocol === 'mailto:' || ((url.protocol === 'http:' || url.protocol === 'https:') && url.host)) return url.href;
    return null;
  }
  function extLink(u) {
    var href = safeUrl(u);
    if (!href) return el('span', 'v', u);
    var a = el('a', 'v', u);
    a.setAttribute('href', href);
    a.setAttribute('rel', 'noopener noreferrer nofollow');
    return a;
  }
  function svgEl(tag, attrs) {
    var e = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, String(attrs[k]));
    return e;
  }
  function sevBadge(i) { return el('span', 'sev sev-' + SEV[i], SEV[i]); }
  function table(heads, rows, numCols) {
    var t = el('table'), tr = el('tr');
    heads.forEach(function (h, i) { tr.appendChild(el('th', numCols && numCols.indexOf(i) >= 0 ? 'num' : '', h)); });
    t.appendChild(el('thead', null, tr));
    var body = el('tbody');
    rows.forEach(function (r) {
      var row = el('tr');
      r.forEach(function (c, i) { row.appendChild(el('td', numCols && numCols.indexOf(i) >= 0 ? 'num' : 'v', c)); });
      body.appendChild(row);
    });
    t.appendChild(body);
    return t;
  }
  function fmtTime(ms) {
    if (ms === null || ms === undefined) return '';
    return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
  }
  function fmtDelta(ms) {
    if (ms < 1000) return '+' + ms + ' ms';
    if (ms < 60000) return '+' + (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + ' s';
    if (ms < 3600000) return '+' + Math.floor(ms / 60000) + ' min ' + Math.round((ms % 60000) / 1000) + ' s';
    return '+' + (ms / 3600000).toFixed(1) + ' h';
  }
  function val(i) { return i >= 0 ? V[i] : null; }
  function show(v) {
    if (v === null || v === undefined) return '';
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }

  // ---- alert documents ----------------------------------------------------------------
  function decode(n) {
    var d = DOCS[n], keys = SH[d[0]], out = {};
    for (var i = 0; i < keys.length; i++) {
      var ref = d[i + 1];
      out[K[keys[i]]] = Array.isArray(ref) ? ref.map(function (x) { return V[x]; }) : V[ref];
    }
    return out;
  }
  function first(v) { return Array.isArray(v) ? (v.length ? v[0] : null) : v; }
  function scalar(v) {
    if (Array.isArray(v)) return v.length === 1 && (v[0] === null || typeof v[0] !== 'object') ? v[0] : null;
    return v !== null && typeof v === 'object' ? null : v;
  }
  var techOf = R.map(function (r) { return r.attack.filter(function (t) { return t[2]; }).map(function (t) { return t[2]; }); });
  var hay = null;
  function haystack() {
    if (hay) return hay;
    hay = new Array(N);
    for (var n = 0; n < N; n++) {
      var d = DOCS[n], parts = [R[A.ru[n]].name];
      for (var i = 1; i < d.length; i++) {
        var ref = d[i];
        if (Array.isArray(ref)) { for (var j = 0; j < ref.length; j++) { var x = V[ref[j]]; if (typeof x === 'string') parts.push(x); } }
        else if (typeof V[ref] === 'string') parts.push(V[ref]);
        else if (typeof V[ref] === 'number') parts.push(String(V[ref]));
      }
      hay[n] = parts.join('\n').toLowerCase();
    }
    return hay;
  }

  // ---- routing ------------------------------------------------------------------------
  function parseHash() {
    var h = location.hash.replace(/^#/, ''), q = {}, path = h, i = h.indexOf('?');
    if (i >= 0) {
      path = h.slice(0, i);
      h.slice(i + 1).split('&').forEach(function (kv) {
        if (!kv) return;
        var j = kv.indexOf('='), k = decodeURIComponent(j < 0 ? kv : kv.slice(0, j));
        try { q[k] = j < 0 ? '' : decodeURIComponent(kv.slice(j + 1)); } catch (e) { q[k] = ''; }
      });
    }
    return { path: path || 'overview', q: q };
  }
  function hashOf(path, q) {
    var parts = [];
    Object.keys(q).forEach(function (k) {
      if (q[k] !== '' && q[k] !== undefined && q[k] !== null) parts.push(encodeURIComponent(k) + '=' + encodeURIComponent(q[k]));
    });
    return path + (parts.length ? '?' + parts.join('&') : '');
  }
  function nav(active) {
    var n = document.getElementById('nav');
    n.textContent = '';
    [['overview', 'Overview'], ['alerts', 'Alerts (' + N + ')'], ['tuning', 'Tuning']].forEach(function (x) {
      n.appendChild(link(x[0], x[1], active === x[0] ? 'on' : ''));
    });
  }
  function route() {
    var r = parseHash();
    app.textContent = '';
    var m = /^alert\/(\d+)$/.exec(r.path);
    if (m && +m[1] < N) { nav('alerts'); detail(+m[1]); }
    else if (r.path === 'alerts') { nav('alerts'); list(r.q); }
    else if (r.path === 'tuning') { nav('tuning'); tuning(); }
    else { nav('overview'); overview(); }
    window.scrollTo(0, 0);
  }

  // ---- overview -----------------------------------------------------------------------
  function countBy(col) {
    var c = new Map();
    for (var n = 0; n < N; n++) { var k = A[col][n]; c.set(k, (c.get(k) || 0) + 1); }
    return c;
  }
  function topTable(title, counts, label, filterKey, limit) {
    var entries = Array.from(counts.entries()).sort(function (a, b) { return b[1] - a[1]; });
    var max = entries.length ? entries[0][1] : 1, shown = entries.slice(0, limit);
    var card = el('div', 'card', el('h3', null, title));
    var rows = shown.map(function (e) {
      var q = {}; q[filterKey] = String(e[0]);
      var bar = el('span', 'bar'); bar.style.width = Math.max(2, Math.round(80 * e[1] / max)) + 'px';
      return [e[0] === -1 ? el('span', 'muted', '(none)') : link(hashOf('alerts', q), label(e[0])), el('span', null, bar, String(e[1]))];
    });
    card.appendChild(table(['', 'alerts'], rows, [1]));
    if (entries.length > limit) card.appendChild(el('p', 'muted', (entries.length - limit) + ' more'));
    card.dataset.count = String(entries.length);
    return card;
  }
  function overview() {
    var s = D.summary;
    var head = el('div', 'card');
    var first = null, last = null;
    A.tm.forEach(function (t) {
      if (t === null) return;
      if (first === null || t < first) first = t;
      if (last === null || t > last) last = t;
    });
    add(head, el('p', null, el('strong', null, String(N)), ' alerts from ', el('strong', null, String(R.length)),
      ' rules', first !== null ? ', from ' + fmtTime(first) + ' to ' + fmtTime(last) + ' UTC' : '',
      s ? '; ' + s.rules_run + ' rules run' : ''));
    app.appendChild(head);
    var sevs = el('div', 'sevs');
    sevs.id = 'severity-counts';
    var bySev = countBy('sv');
    for (var i = SEV.length - 1; i >= 0; i--) {
      var a = link(hashOf('alerts', { sev: String(i) }), '');
      a.dataset.severity = SEV[i];
      add(a, [el('span', 'n', String(bySev.get(i) || 0)), sevBadge(i)]);
      sevs.appendChild(a);
    }
    app.appendChild(el('h2', null, 'Alerts by severity'));
    app.appendChild(sevs);
    var grid = el('div', 'grid');
    var byRule = topTable('By rule', countBy('ru'), function (k) { return R[k].name; }, 'rule', 15);
    byRule.id = 'by-rule';
    var byHost = topTable('By host', countBy('ho'), function (k) { return V[k]; }, 'host', 15);
    byHost.id = 'by-host';
    var byUser = topTable('By user', countBy('us'), function (k) { return V[k]; }, 'user', 15);
    byUser.id = 'by-user';
    add(grid, [byRule, byHost, byUser]);
    app.appendChild(el('h2', null, 'Timeline'));
    app.appendChild(timeline('ho'));
    app.appendChild(el('h2', null, 'ATT&CK: tactics and techniques that fired'));
    app.appendChild(matrix());
    app.appendChild(el('h2', null, 'Alerts by rule, host and user'));
    app.appendChild(grid);
    app.appendChild(el('h2', null, 'The run'));
    app.appendChild(runCard());
  }
  function matrix() {
    var perRule = countBy('ru'), tactics = new Map();
    perRule.forEach(function (n, ri) {
      R[ri].attack.forEach(function (t) {
        if (!t[2]) return;
        if (!tactics.has(t[0])) tactics.set(t[0], { name: t[1], techs: new Map() });
        var techs = tactics.get(t[0]).techs, cur = techs.get(t[2]) || { name: t[3], n: 0 };
        cur.n += n; techs.set(t[2], cur);
      });
    });
    var box = el('div', 'card');
    box.id = 'attack-matrix';
    if (!tactics.size) { box.appendChild(el('p', 'muted', 'No rule that fired names an ATT&CK technique.')); return box; }
    var m = el('div', 'matrix');
    var order = Array.from(tactics.keys()).sort(function (a, b) {
      var x = TACTICS.indexOf(a), y = TACTICS.indexOf(b);
      return (x < 0 ? 99 : x) - (y < 0 ? 99 : y) || (a < b ? -1 : 1);
    });
    var max = 1;
    tactics.forEach(function (t) { t.techs.forEach(function (x) { max = Math.max(max, x.n); }); });
    order.forEach(function (tid) {
      var t = tactics.get(tid), col = el('div', 'col', el('div', 'tac', t.name || tid, el('div', 'muted', tid)));
      Array.from(t.techs.entries()).sort(function (a, b) { return b[1].n - a[1].n; }).forEach(function (e) {
        var heat = 1 + Math.min(3, Math.floor(4 * e[1].n / (max + 1)));
        var a = link(hashOf('alerts', { tech: e[0] }), '', 'tech heat' + heat);
        a.dataset.technique = e[0];
        add(a, [el('span', 'c', String(e[1].n)), e[0], el('br'), e[1].name]);
        col.appendChild(a);
      });
      m.appendChild(col);
    });
    box.appendChild(m);
    return box;
  }
  function timeline(by) {
    var box = el('div', 'card');
    box.id = 'timeline';
    var sel = el('select');
    [['ho', 'by host'], ['ru', 'by rule']].forEach(function (o) {
      var opt = el('option', null, o[1]); opt.value = o[0]; if (o[0] === by) opt.selected = true; sel.appendChild(opt);
    });
    sel.addEventListener('change', function () { box.replaceWith(timeline(sel.value)); });
    box.appendChild(el('div', 'filters', 'Alerts over time ', sel));
    var idx = [];
    for (var n = 0; n < N; n++) if (A.tm[n] !== null) idx.push(n);
    if (!idx.length) { box.appendChild(el('p', 'muted', 'No alert has a time.')); return box; }
    var t0 = Infinity, t1 = -Infinity;
    idx.forEach(function (n) { t0 = Math.min(t0, A.tm[n]); t1 = Math.max(t1, A.tm[n]); });
    var buckets = 60, span = Math.max(1, t1 - t0), width = span / buckets;
    var totals = new Map();
    idx.forEach(function (n) { var k = A[by][n]; totals.set(k, (totals.get(k) || 0) + 1); });
    var series = Array.from(totals.entries()).sort(function (a, b) { return b[1] - a[1]; }).slice(0, 8).map(function (e) { return e[0]; });
    var slot = new Map(); series.forEach(function (k, i) { slot.set(k, i); });
    var counts = []; for (var b = 0; b < buckets; b++) counts.push(new Array(series.length + 1).fill(0));
    idx.forEach(function (n) {
      var b = Math.min(buckets - 1, Math.floor((A.tm[n] - t0) / width)), s = slot.has(A[by][n]) ? slot.get(A[by][n]) : series.length;
      counts[b][s]++;
    });
    var peak = 1; counts.forEach(function (c) { peak = Math.max(peak, c.reduce(function (x, y) { return x + y; }, 0)); });
    var W = 1000, H = 240, L = 40, B = 26, T = 8, bw = (W - L - 10) / buckets;
    var g = svgEl('svg', { viewBox: '0 0 ' + W + ' ' + H, class: 'timeline', role: 'img' });
    g.appendChild(svgEl('line', { x1: L, y1: H - B, x2: W - 10, y2: H - B, class: 'axis' }));
    g.appendChild(svgEl('line', { x1: L, y1: T, x2: L, y2: H - B, class: 'axis' }));
    var ymax = svgEl('text', { x: 4, y: T + 10 }); ymax.textContent = String(peak); g.appendChild(ymax);
    var bars = 0;
    counts.forEach(function (c, b) {
      var y = H - B;
      c.forEach(function (v, s) {
        if (!v) return;
        var h = (H - B - T) * v / peak;
        y -= h;
        var r = svgEl('rect', { x: (L + b * bw + 1).toFixed(1), y: y.toFixed(1), width: Math.max(1, bw - 2).toFixed(1), height: h.toFixed(1), class: 'c' + (s < series.length ? s : 8) });
        var tip = svgEl('title', {});
        tip.textContent = vis((s < series.length ? label(series[s]) : 'other') + ': ' + v + ' at ' + fmtTime(t0 + b * width));
        r.appendChild(tip);
        g.appendChild(r);
        bars++;
      });
    });
    [0, Math.floor(buckets / 2), buckets].forEach(function (b) {
      var t = svgEl('text', { x: Math.min(W - 140, L + b * bw), y: H - 8 });
      t.textContent = fmtTime(t0 + b * width); g.appendChild(t);
    });
    g.dataset.bars = String(bars);
    box.appendChild(g);
    function label(k) { return by === 'ru' ? R[k].name : k === -1 ? '(no host)' : String(V[k]); }
    var legend = el('div', 'legend');
    series.forEach(function (k, i) { legend.appendChild(el('span', 'v', el('i', 'c' + i), label(k))); });
    if (totals.size > series.length) legend.appendChild(el('span', null, el('i', 'c8'), 'other'));
    box.appendChild(legend);
    return box;
  }
  function runCard() {
    var s = D.summary, box = el('div');
    box.id = 'run';
    if (!s) {
      box.appendChild(el('div', 'card', el('p', 'muted', 'No summary of the run was given (trailhound report --summary FILE, from hunt --summary): inputs and rules run are not known.')));
    } else {
      var inp = s.inputs || {};
      var c = el('div', 'card', el('h3', null, 'Inputs'),
        el('p', null, String((inp.files || []).length) + ' files, ' + inp.events + ' events, ' + inp.bad_lines + ' bad lines'));
      c.id = 'inputs';
      if (inp.per_file && inp.per_file.length) {
        c.appendChild(table(['file', 'format', 'lines', 'events', 'skipped'], inp.per_file.map(function (f) {
          return [f.file, f.format, String(f.lines), String(f.events), String(f.skipped)];
        }), [2, 3, 4]));
      }
      (inp.notes || []).forEach(function (n) { c.appendChild(el('p', 'muted', n)); });
      (inp.mostly_bad || []).forEach(function (f) { c.appendChild(el('p', 'warn', f + ': mostly bad lines')); });
      box.appendChild(c);
    }
    if (D.skipped && D.skipped.length) {
      var sk = el('div', 'card', el('h3', null, 'Skipped lines'));
      sk.id = 'skipped';
      sk.appendChild(table(['file', 'line', 'reason'], D.skipped.map(function (x) { return [x.file, String(x.line), x.reason]; }), [1]));
      box.appendChild(sk);
    }
    if (s) {
      var rr = el('div', 'card', el('h3', null, 'Rules run (' + (s.rules || []).length + ')'));
      rr.id = 'rules-run';
      rr.appendChild(table(['rule', 'status', 'hits', 'alerts', 'seconds', 'notes'], (s.rules || []).map(function (r) {
        return [r.name, r.status, String(r.hits), String(r.alerts), String(r.seconds), (r.notes || []).join('; ') + (r.error ? ' ' + r.error : '')];
      }), [2, 3, 4]));
      box.appendChild(rr);
      var un = (s.unsupported || []).concat(s.errors || []);
      var uc = el('div', 'card', el('h3', null, 'Rules that could not run (' + un.length + ')'));
      uc.id = 'rules-not-run';
      if (un.length) uc.appendChild(table(['rule', 'reason'], un.map(function (r) { return [r.name || r.file || '', r.reason]; })));
      else uc.appendChild(el('p', 'muted', 'None: every rule ran.'));
      box.appendChild(uc);
    }
    return box;
  }

  // ---- alert list ----------------------------------------------------------------------
  function options(sel, items, chosen) {
    items.forEach(function (o) {
      var opt = el('option', null, o[1]); opt.value = o[0]; if (o[0] === chosen) opt.selected = true; sel.appendChild(opt);
    });
  }
  function filtered(q) {
    var sev = q.sev !== undefined && q.sev !== '' ? +q.sev : null, rule = q.rule !== undefined && q.rule !== '' ? +q.rule : null;
    var host = q.host !== undefined && q.host !== '' ? +q.host : null, user = q.user !== undefined && q.user !== '' ? +q.user : null;
    var tech = q.tech || null, text = (q.q || '').toLowerCase(), steps = q.steps !== 'hide';
    var techRules = null;
    if (tech) { techRules = new Set(); techOf.forEach(function (ts, i) { if (ts.some(function (t) { return t === tech || t.indexOf(tech + '.') === 0; })) techRules.add(i); }); }
    var h = text ? haystack() : null, out = [];
    for (var n = 0; n < N; n++) {
      if (sev !== null && A.sv[n] !== sev) continue;
      if (rule !== null && A.ru[n] !== rule) continue;
      if (host !== null && A.ho[n] !== host) continue;
      if (user !== null && A.us[n] !== user) continue;
      if (techRules && !techRules.has(A.ru[n])) continue;
      if (!steps && A.gp[n] >= 0) continue;
      if (h && h[n].indexOf(text) < 0) continue;
      out.push(n);
    }
    return out;
  }
  var SORTS = {
    time: function (a, b) { return (A.tm[a] || 0) - (A.tm[b] || 0) || a - b; },
    severity: function (a, b) { return A.sv[a] - A.sv[b] || a - b; },
    rule: function (a, b) { var x = R[A.ru[a]].name, y = R[A.ru[b]].name; return x < y ? -1 : x > y ? 1 : a - b; },
    host: function (a, b) { var x = show(val(A.ho[a])), y = show(val(A.ho[b])); return x < y ? -1 : x > y ? 1 : a - b; },
    user: function (a, b) { var x = show(val(A.us[a])), y = show(val(A.us[b])); return x < y ? -1 : x > y ? 1 : a - b; }
  };
  function list(q) {
    var go = function (change) {
      var next = Object.assign({}, q, change);
      if (!('page' in change)) delete next.page;
      location.hash = hashOf('alerts', next);
    };
    var f = el('div', 'filters');
    f.id = 'filters';
    var sev = el('select'); sev.name = 'sev';
    options(sev, [['', 'any severity']].concat(SEV.map(function (s, i) { return [String(i), s]; }).reverse()), q.sev || '');
    var rule = el('select'); rule.name = 'rule';
    options(rule, [['', 'any rule']].concat(R.map(function (r, i) { return [String(i), r.name]; }).sort(function (a, b) { return a[1] < b[1] ? -1 : 1; })), q.rule || '');
    var hosts = new Set(A.ho), users = new Set(A.us);
    var host = el('select'); host.name = 'host';
    options(host, [['', 'any host']].concat(Array.from(hosts).filter(function (k) { return k >= 0; }).map(function (k) { return [String(k), show(V[k])]; }).sort(function (a, b) { return a[1] < b[1] ? -1 : 1; })), q.host || '');
    var user = el('select'); user.name = 'user';
    options(user, [['', 'any user']].concat(Array.from(users).filter(function (k) { return k >= 0; }).map(function (k) { return [String(k), show(V[k])]; }).sort(function (a, b) { return a[1] < b[1] ? -1 : 1; })), q.user || '');
    var techs = new Map();
    R.forEach(function (r) { r.attack.forEach(function (t) { if (t[2]) techs.set(t[2], t[3]); }); });
    var tech = el('select'); tech.name = 'tech';
    options(tech, [['', 'any technique']].concat(Array.from(techs.entries()).sort().map(function (e) { return [e[0], e[0] + ' ' + e[1]]; })), q.tech || '');
    var steps = el('select'); steps.name = 'steps';
    options(steps, [['', 'with sequence steps'], ['hide', 'without sequence steps']], q.steps || '');
    var text = el('input'); text.type = 'search'; text.name = 'q'; text.placeholder = 'search any field'; text.value = q.q || '';
    [sev, rule, host, user, tech, steps].forEach(function (s) {
      s.addEventListener('change', function () { var c = {}; c[s.name] = s.value; go(c); });
    });
    var timer = null;
    text.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(function () { go({ q: text.value }); }, 250);
    });
    text.addEventListener('keydown', function (e) { if (e.key === 'Enter') { clearTimeout(timer); go({ q: text.value }); } });
    add(f, [sev, rule, host, user, tech, steps, text]);
    if (Object.keys(q).length) f.appendChild(link('alerts', 'clear filters'));
    app.appendChild(f);
    var rows = filtered(q), sort = SORTS[q.sort] ? q.sort : 'time', asc = q.dir === 'asc';
    var cmp = SORTS[sort];
    rows.sort(asc ? cmp : function (a, b) { return cmp(b, a); });
    var page = Math.max(0, Math.min(Math.floor((rows.length - 1) / PAGE), +(q.page || 0) || 0));
    var info = el('span', null, rows.length ? 'alerts ' + (page * PAGE + 1) + '\u2013' + Math.min(rows.length, (page + 1) * PAGE) + ' of ' : 'no alert of ', el('strong', null, String(rows.length)), rows.length !== N ? ' (of ' + N + ')' : '');
    info.id = 'match-count';
    info.dataset.count = String(rows.length);
    var prev = el('button', null, '\u2190 previous'), next = el('button', null, 'next \u2192');
    prev.disabled = page === 0; next.disabled = (page + 1) * PAGE >= rows.length;
    prev.addEventListener('click', function () { go({ page: String(page - 1) }); });
    next.addEventListener('click', function () { go({ page: String(page + 1) }); });
    app.appendChild(el('div', 'pager', prev, next, info));
    var t = el('table'), tr = el('tr');
    t.id = 'alert-table';
    [['time', 'time (UTC)'], ['severity', 'severity'], ['rule', 'rule'], ['host', 'host'], ['user', 'user'], [null, 'reason']].forEach(function (c) {
      if (!c[0]) { tr.appendChild(el('th', null, c[1])); return; }
      var b = el('button', sort === c[0] ? 'on' + (asc ? ' asc' : '') : '', c[1]);
      b.dataset.sort = c[0];
      b.addEventListener('click', function () { go({ sort: c[0], dir: sort === c[0] && !asc ? 'asc' : '' }); });
      tr.appendChild(el('th', null, b));
    });
    t.appendChild(el('thead', null, tr));
    var body = el('tbody');
    rows.slice(page * PAGE, (page + 1) * PAGE).forEach(function (n) {
      var row = el('tr');
      row.dataset.alert = String(n);
      var what = A.gp[n] >= 0 ? el('span', 'pill', 'step ' + (A.gi[n] + 1)) : A.gp[n] === -2 ? el('span', 'pill', 'sequence') : null;
      add(row, [el('td', 'mono', link('alert/' + n, fmtTime(A.tm[n]) || '(no time)')), el('td', null, sevBadge(A.sv[n])),
        el('td', 'v', R[A.ru[n]].name), el('td', 'v', show(val(A.ho[n]))), el('td', 'v', show(val(A.us[n]))),
        el('td', 'v', what, link('alert/' + n, show(V[A.re[n]])))]);
      body.appendChild(row);
    });
    t.appendChild(body);
    app.appendChild(el('div', 'card', t));
  }

  // ---- alert detail --------------------------------------------------------------------
  function kv(pairs) {
    var dl = el('dl', 'kv');
    pairs.forEach(function (p) { if (p[1] === null || p[1] === undefined || p[1] === '' || (Array.isArray(p[1]) && !p[1].length)) return; dl.appendChild(el('dt', null, p[0])); dl.appendChild(el('dd', null, p[1])); });
    return dl;
  }
  function tomlString(s) {
    return '"' + String(s).replace(/[\\"\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g, function (c) {
      return { '\\': '\\\\', '"': '\\"', '\n': '\\n', '\t': '\\t', '\r': '\\r' }[c] || '\\u' + ('000' + c.charCodeAt(0).toString(16).toUpperCase()).slice(-4);
    }) + '"';
  }
  function exceptionToml(rule, doc) {
    var entries = [];
    ENTRY_FIELDS.forEach(function (f) {
      var v = scalar(doc[f]);
      if (v !== null && v !== undefined && v !== '') entries.push([f, String(v)]);
    });
    if (!entries.length) return null;
    var slug = (rule.name || rule.rule_id).toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60) || 'rule';
    return ['# Review before use: an exception hides every future event that matches it.',
      '[metadata]', 'list_name = ' + tomlString('Exceptions: ' + rule.name), 'rule_ids = [' + tomlString(rule.rule_id) + ']', 'rule_names = []', '',
      '[[exceptions]]', '[exceptions.container]', 'list_id = ' + tomlString('exceptions-' + slug), 'name = ' + tomlString('Exceptions: ' + rule.name),
      'description = ' + tomlString('Written from an alert by trailhound report'), 'namespace_type = "single"', 'type = "detection"', '',
      '[[exceptions.items]]', 'name = ' + tomlString(rule.name + ': ' + (doc['kibana.alert.uuid'] || '')), 'item_id = ' + tomlString('exception-' + slug + '-1'),
      'list_id = ' + tomlString('exceptions-' + slug), 'type = "simple"', 'description = ' + tomlString('Pre-filled from one alert; keep the entries that make it benign'),
      'entries = ['].concat(entries.map(function (e) {
      return '  { field = ' + tomlString(e[0]) + ', type = "match", operator = "included", value = ' + tomlString(e[1]) + ' },';
    }), [']']).join('\n') + '\n';
  }
  function fieldsTable(doc) {
    var keys = Object.keys(doc).filter(function (k) { return k !== 'event.original' && k !== 'kibana.alert.ancestors'; }).sort();
    var t = el('table'), body = el('tbody');
    keys.forEach(function (k) {
      var v = doc[k];
      body.appendChild(el('tr', null, el('td', 'k', k), el('td', 'v', Array.isArray(v) && v.every(function (x) { return x === null || typeof x !== 'object'; }) ? v.map(function (x) { return el('span', 'pill', show(x)); }) : show(v))));
    });
    t.appendChild(body);
    return t;
  }
  function rawLines(doc) {
    var raw = doc['event.original'] !== undefined ? doc['event.original'] : doc.message;
    if (raw === undefined || raw === null) return el('p', 'muted', 'No raw line: the event came as a document (ECS JSON) or its reader keeps none.');
    return pre(Array.isArray(raw) ? raw.join('\n') : show(raw));
  }
  function sequenceSteps(n) {
    var steps = [];
    for (var i = 0; i < N; i++) if (A.gp[i] === n) steps.push(i);
    steps.sort(function (a, b) { return A.gi[a] - A.gi[b]; });
    var seq = R[A.ru[n]].sequence, box = el('div', 'card', el('h2', null, 'Sequence: ' + steps.length + ' steps in order'));
    box.id = 'sequence';
    if (seq && seq.maxspan_ms) box.appendChild(el('p', 'muted', 'maxspan ' + fmtDelta(seq.maxspan_ms).slice(1)));
    var stageKeys = seq ? seq.stages.filter(function (s, i) { return !seq.missing[i]; }) : [];
    var t = el('table', 'steps'), body = el('tbody');
    t.appendChild(el('thead', null, el('tr', null, ['#', 'time (UTC)', 'after the previous', 'event', 'join keys'].map(function (h) { return el('th', null, h); }))));
    var prev = null;
    steps.forEach(function (s, i) {
      var doc = decode(s), keys = stageKeys.length === steps.length ? stageKeys[i] : (seq && seq.stages.length ? seq.stages[0] : []);
      var what = [show(first(doc['event.action']) || first(doc['event.category']) || ''), doc['process.command_line'] ? ': ' + show(doc['process.command_line']) : doc['file.path'] ? ': ' + show(doc['file.path']) : ''].join('');
      body.appendChild(el('tr', null, el('td', null, link('alert/' + s, String(i + 1))), el('td', 'mono', fmtTime(A.tm[s])),
        el('td', 'delta', prev === null || A.tm[s] === null ? '' : fmtDelta(A.tm[s] - A.tm[prev])), el('td', 'v', what),
        el('td', 'v', keys.map(function (k) { return el('span', 'pill', k + ' = ' + show(doc[k])); }))));
      prev = s;
    });
    t.appendChild(body);
    box.appendChild(t);
    return box;
  }
  function processTree(ci) {
    var box = el('div', 'card', el('h2', null, 'Process tree'));
    box.id = 'process-tree';
    if (ci < 0) { box.appendChild(el('p', 'muted', 'Not known: give the event files to trailhound report (or use hunt --html) to see the processes around this event.')); return box; }
    var c = D.processes[ci], ul = el('ul', 'tree'), base = c.nodes.length ? -c.nodes[0].depth : 0;
    c.nodes.forEach(function (p) {
      var li = el('li', (p.relation === 'self' ? 'self ' : p.relation === 'leader' ? 'leader ' : '') + 'd' + Math.min(6, p.depth + base),
        el('span', 'rel', p.relation === 'self' ? 'this process' + (p.leader ? ', the entry leader' : '') : p.relation), el('strong', 'v', p.name || '?'), ' pid ' + p.pid,
        p.user ? ' user ' : '', p.user ? el('span', 'v', p.user) : null, ' started ' + p.start, el('div', 'mono v', p.command_line || p.executable));
      ul.appendChild(li);
    });
    box.appendChild(ul);
    var end = { leader: 'The walk reached the entry leader' + (c.leader_type ? ' (' + c.leader_type + (c.leader_ip ? ', from ' + c.leader_ip : '') + ')' : '') + '.',
      init: 'The walk reached pid 1.', 'parent not seen starting': 'The walk stops here: the parent was not seen starting in the event files.',
      'no parent pid': 'The topmost process has no parent pid.', 'depth limit': 'The walk stopped at its depth limit.' }[c.end] || '';
    box.appendChild(el('p', 'muted', end));
    if (c.more_children) box.appendChild(el('p', 'muted', c.more_children + ' more children'));
    box.appendChild(el('h3', null, 'Siblings (' + (c.siblings.length + c.more_siblings) + ')'));
    if (c.siblings.length) {
      var sib = el('ul', 'tree');
      c.siblings.forEach(function (p) { sib.appendChild(el('li', null, el('strong', 'v', p.name || '?'), ' pid ' + p.pid + ' started ' + p.start, el('div', 'mono v', p.command_line || p.executable))); });
      box.appendChild(sib);
    }
    return box;
  }
  function ruleCard(ri) {
    var r = R[ri], box = el('div', 'card', el('h2', null, 'Rule: ', el('span', 'v', r.name)));
    box.id = 'rule';
    box.appendChild(kv([['rule id', r.rule_id], ['type', r.type + (r.language ? ' (' + r.language + ')' : '')],
      ['severity', r.severity], ['risk score', r.risk_score === null ? '' : String(r.risk_score)],
      ['ATT&CK', r.attack.map(function (t) { return el('span', 'pill', (t[1] || t[0]) + (t[2] ? ' \u203a ' + t[2] + ' ' + t[3] : '')); })],
      ['author', r.author.join(', ')], ['license', r.license], ['attribution', r.attribution], ['file', r.file], ['tags', r.tags.map(function (t) { return el('span', 'pill', t); })]]));
    if (r.description) { var d = el('p', 'v text'); d.textContent = vis(r.description, true); box.appendChild(d); }
    if (r.query) { box.appendChild(el('h3', null, 'Query')); box.appendChild(pre(r.query)); }
    if (r.references.length) {
      box.appendChild(el('h3', null, 'References'));
      box.appendChild(el('ul', null, r.references.map(function (u) { return el('li', null, extLink(u)); })));
    }
    return box;
  }
  function detail(n) {
    var doc = decode(n), ri = A.ru[n], r = R[ri];
    var head = el('div', 'card');
    head.id = 'detail-head';
    add(head, [el('p', null, link('alerts', '\u2190 all alerts')),
      el('h2', null, sevBadge(A.sv[n]), ' ', el('span', 'v', r.name)),
      el('p', 'v', show(V[A.re[n]])),
      kv([['time (UTC)', fmtTime(A.tm[n])], ['host', show(val(A.ho[n]))], ['user', show(val(A.us[n]))], ['alert id', show(doc['kibana.alert.uuid'])]])]);
    if (A.gp[n] >= 0) head.appendChild(el('p', null, 'Step ' + (A.gi[n] + 1) + ' of ', link('alert/' + A.gp[n], 'a sequence'), '.'));
    app.appendChild(head);
    if (A.gp[n] === -2) app.appendChild(sequenceSteps(n));
    var ev = el('div', 'card', el('h2', null, A.gp[n] === -2 ? 'Fields all steps share' : 'Source event'));
    ev.id = 'event';
    ev.appendChild(el('h3', null, doc['event.original'] !== undefined ? 'Raw lines (event.original)' : doc.message !== undefined ? 'Message (the log line after its syslog header)' : 'Raw line'));
    ev.appendChild(rawLines(doc));
    ev.appendChild(el('h3', null, 'Fields'));
    ev.appendChild(fieldsTable(doc));
    if (A.gp[n] === -2) {
      for (var s = 0; s < N; s++) {
        if (A.gp[s] !== n || A.pc[s] < 0) continue;
        var t = processTree(A.pc[s]);
        t.id = 'process-tree-' + s;
        t.firstChild.textContent = 'Process tree of step ' + (A.gi[s] + 1);
        app.appendChild(t);
      }
      app.appendChild(ev);
    } else {
      app.appendChild(ev);
      app.appendChild(processTree(A.pc[n]));
    }
    app.appendChild(ruleCard(ri));
    var g = el('div', 'card guide', el('h2', null, 'Investigation guide'));
    g.id = 'guide';
    var tpl = document.getElementById('note-' + ri);
    if (r.has_note && tpl && tpl.content) g.appendChild(tpl.content.cloneNode(true));
    else g.appendChild(el('p', 'muted', 'The rule has no investigation guide.'));
    app.appendChild(g);
    var fp = el('div', 'card', el('h2', null, 'False positives and tuning'));
    fp.id = 'tuning-entry';
    if (r.false_positives.length) fp.appendChild(el('ul', null, r.false_positives.map(function (x) { return el('li', 'v', x); })));
    else fp.appendChild(el('p', 'muted', 'The rule lists no false positives.'));
    var toml = exceptionToml(r, doc);
    fp.appendChild(el('h3', null, 'Exception entry (detection-rules exception TOML, for hunt --exceptions)'));
    if (toml) { var p = pre(toml); p.id = 'exception-toml'; fp.appendChild(p); }
    else fp.appendChild(el('p', 'muted', 'The alert carries none of the fields an exception entry is written from.'));
    app.appendChild(fp);
  }

  // ---- tuning --------------------------------------------------------------------------
  function tuning() {
    app.appendChild(el('h2', null, 'Rules by noise'));
    app.appendChild(el('p', 'muted', 'Over known-benign data every alert is a false positive: the values that dominate a rule\'s alerts are the exception it would need. trailhound report --exceptions-out DIR writes these lists for review.'));
    var box = el('div');
    box.id = 'tuning';
    D.tuning.forEach(function (t) {
      var r = R[t.rule], c = el('div', 'card');
      c.dataset.rule = String(t.rule);
      add(c, [el('h3', null, el('span', 'v', r.name), ' \u2014 ' + t.hits + ' hits ', link(hashOf('alerts', { rule: String(t.rule) }), 'alerts'))]);
      c.appendChild(table(['field', 'distinct', 'top values (alerts)'], t.fields.map(function (f) {
        return [f.field, String(f.distinct), f.top.map(function (x) { return el('span', 'pill', show(x.value) + ' \u00d7' + x.count); })];
      }), [1]));
      if (t.toml) { c.appendChild(el('h3', null, 'Exception for the dominant values')); c.appendChild(pre(t.toml)); }
      else c.appendChild(el('p', 'muted', 'No value dominates its alerts: no single exception would cover them.'));
      box.appendChild(c);
    });
    if (!D.tuning.length) box.appendChild(el('p', 'muted', 'No alert.'));
    app.appendChild(box);
  }

  var meta = document.getElementById('meta');
  meta.textContent = vis((D.meta.source ? D.meta.source + ' \u00b7 ' : '') + (D.meta.created ? 'alerts written ' + D.meta.created : ''));
  window.addEventListener('hashchange', route);
  route();
  document.documentElement.dataset.ready = '1';
  document.documentElement.dataset.tti = String(Math.round(performance.now() - started));
})();
