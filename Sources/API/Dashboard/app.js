(function () {
  'use strict';

  var KEY_STORAGE = 'faultline.apiKey';
  var PREFS_STORAGE = 'faultline.prefs';
  var REFRESH_MS = 15000;
  var REQUEST_TIMEOUT_MS = 12000;
  var MAX_CHART_SERVICES = 8;
  var COLORS = ['#4cc2ff', '#f5b83d', '#a98bff', '#4fd18b', '#ff8fa3', '#2ec4b6', '#e2e36b', '#d38cf0'];
  var RANGES = { '1h': 3600e3, '6h': 6 * 3600e3, '24h': 24 * 3600e3 };
  var RANGE_TEXT = { '1h': 'last hour', '6h': 'last 6 hours', '24h': 'last 24 hours' };
  var STEP_MS = { '1m': 60e3, '5m': 300e3 };
  var KIND_TEXT = {
    spike: 'Spike', level_shift: 'Level shift', new_group: 'New group', regression: 'Regression',
    predicted_breach: 'Predicted breach', cluster: 'Cluster'
  };
  var SVG_NS = 'http://www.w3.org/2000/svg';

  var state = {
    key: null,
    range: '6h',
    step: 'auto',
    groupSort: 'event_count',
    hidden: {},
    timer: null,
    running: false,
    again: false,
    generation: 0,
    chartData: null,
    insightDetails: {}
  };

  var $ = function (id) { return document.getElementById(id); };
  var numberFormat = new Intl.NumberFormat();
  var compactFormat = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });

  // ---- DOM helpers: text always goes through text nodes, never through HTML parsing ----

  function el(tag, attrs) {
    var node = document.createElement(tag);
    setAttrs(node, attrs);
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function svg(tag, attrs) {
    var node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function setAttrs(node, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) return;
      if (name === 'text') node.textContent = String(value);
      // Through the CSSOM: the Content-Security-Policy refuses style attributes.
      else if (name === 'style') node.style.cssText = String(value);
      else node.setAttribute(name, String(value));
    });
  }

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(node, c); }); return; }
    node.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }

  function replace(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    for (var i = 1; i < arguments.length; i++) append(node, arguments[i]);
  }

  function str(value) { return typeof value === 'string' ? value : (value === null || value === undefined ? '' : String(value)); }

  // ---- time ----

  // API times carry up to microseconds; keep milliseconds so every engine parses them.
  function parseTime(text) {
    if (typeof text !== 'string') return NaN;
    var m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/i.exec(text);
    if (!m) return Date.parse(text);
    var frac = m[2] ? '.' + (m[2] + '00').slice(0, 3) : '';
    return Date.parse(m[1] + frac + (m[3].toUpperCase() === 'Z' ? 'Z' : m[3]));
  }

  function pad(n) { return n < 10 ? '0' + n : String(n); }
  function clock(ms) { var d = new Date(ms); return pad(d.getHours()) + ':' + pad(d.getMinutes()); }
  function clockSeconds(ms) { var d = new Date(ms); return clock(ms) + ':' + pad(d.getSeconds()); }
  var MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  function dayLabel(ms) { var d = new Date(ms); return d.getDate() + ' ' + MONTHS[d.getMonth()]; }
  function fullTime(ms) {
    var d = new Date(ms);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + clockSeconds(ms);
  }

  function relative(ms) {
    if (!isFinite(ms)) return '–';
    var s = Math.round((Date.now() - ms) / 1000);
    if (s < 0) s = 0;
    if (s < 60) return s + ' s ago';
    var m = Math.floor(s / 60);
    if (m < 60) return m + ' min ago';
    var h = Math.floor(m / 60);
    if (h < 48) return h + ' h ' + (m % 60 ? (m % 60) + ' min ' : '') + 'ago';
    return Math.floor(h / 24) + ' days ago';
  }

  function timeEl(text, cls) {
    var ms = parseTime(text);
    if (!isFinite(ms)) return el('span', { 'class': 'dim' }, '–');
    return el('time', { datetime: new Date(ms).toISOString(), title: fullTime(ms), 'class': cls || null }, relative(ms));
  }

  function tzText() {
    var offset = -new Date().getTimezoneOffset();
    var sign = offset >= 0 ? '+' : '-';
    offset = Math.abs(offset);
    var name = '';
    try { name = Intl.DateTimeFormat().resolvedOptions().timeZone || ''; } catch (e) { name = ''; }
    return (name ? name + ', ' : '') + 'UTC' + sign + pad(Math.floor(offset / 60)) + ':' + pad(offset % 60);
  }

  // ---- API ----

  function ApiError(kind, status, detail) {
    this.kind = kind;
    this.status = status;
    this.detail = detail;
  }

  function request(path) {
    var controller = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS) : null;
    var options = {
      headers: { 'Authorization': 'Bearer ' + state.key, 'Accept': 'application/json' },
      cache: 'no-store',
      credentials: 'omit'
    };
    if (controller) options.signal = controller.signal;
    return fetch(path, options).then(function (response) {
      if (response.ok) {
        return response.json().catch(function () {
          throw new ApiError('http', response.status, 'The answer was not valid JSON.');
        });
      }
      return response.text().then(function (body) {
        var detail = '';
        try {
          var problem = JSON.parse(body);
          if (problem && typeof problem.detail === 'string') detail = problem.detail;
          else if (problem && typeof problem.title === 'string') detail = problem.title;
        } catch (e) { detail = ''; }
        var kind = response.status === 401 ? 'unauthorized' : response.status === 403 ? 'forbidden' : 'http';
        throw new ApiError(kind, response.status, detail);
      }, function () {
        throw new ApiError('http', response.status, '');
      });
    }, function () {
      throw new ApiError('unreachable', 0, '');
    }).then(function (value) {
      if (timer) clearTimeout(timer);
      return value;
    }, function (error) {
      if (timer) clearTimeout(timer);
      throw error instanceof ApiError ? error : new ApiError('unreachable', 0, '');
    });
  }

  function items(page) { return page && Array.isArray(page.items) ? page.items : []; }

  // Follows next_cursor while `more` says the last page still matters.
  function collect(path, maxPages, more) {
    var all = [];
    function step(cursor, left) {
      var url = path + (cursor ? (path.indexOf('?') >= 0 ? '&' : '?') + 'cursor=' + encodeURIComponent(cursor) : '');
      return request(url).then(function (page) {
        var got = items(page);
        all = all.concat(got);
        var next = page && typeof page.next_cursor === 'string' ? page.next_cursor : null;
        if (next && left > 1 && (!more || more(got))) return step(next, left - 1);
        return { items: all, complete: !next };
      });
    }
    return step(null, maxPages);
  }

  function settle(promise) {
    return promise.then(function (value) { return { ok: true, value: value }; },
      function (error) { return { ok: false, error: error instanceof ApiError ? error : new ApiError('http', 0, '') }; });
  }

  // ---- key handling ----

  function readStoredKey() {
    try { return sessionStorage.getItem(KEY_STORAGE); } catch (e) { return null; }
  }

  function storeKey(key) {
    try {
      if (key) sessionStorage.setItem(KEY_STORAGE, key);
      else sessionStorage.removeItem(KEY_STORAGE);
    } catch (e) { /* storage disabled: the key lives in memory for this page */ }
  }

  // Accepts #key=<key> (also with other fragment parameters) and removes the fragment.
  function takeKeyFromFragment() {
    var hash = location.hash ? location.hash.slice(1) : '';
    if (!hash) return null;
    var key = null, seen = false;
    hash.split('&').forEach(function (part) {
      var eq = part.indexOf('=');
      if (eq <= 0) return;
      var name = part.slice(0, eq), value = '';
      try { value = decodeURIComponent(part.slice(eq + 1).replace(/\+/g, ' ')).trim(); } catch (e) { value = ''; }
      if (name === 'key') { key = value; seen = true; }
      else if (name === 'range' && RANGES[value]) { state.range = value; seen = true; }
      else if (name === 'step' && (value === 'auto' || STEP_MS[value])) { state.step = value; seen = true; }
    });
    if (seen) {
      try { history.replaceState(null, '', location.pathname + location.search); } catch (e) { /* keep the fragment */ }
    }
    return key || null;
  }

  function loadPrefs() {
    try {
      var prefs = JSON.parse(sessionStorage.getItem(PREFS_STORAGE) || '{}');
      if (prefs && RANGES[prefs.range]) state.range = prefs.range;
      if (prefs && (prefs.step === 'auto' || STEP_MS[prefs.step])) state.step = prefs.step;
      if (prefs && (prefs.groupSort === 'event_count' || prefs.groupSort === 'last_seen')) state.groupSort = prefs.groupSort;
    } catch (e) { /* defaults */ }
  }

  function savePrefs() {
    try {
      sessionStorage.setItem(PREFS_STORAGE, JSON.stringify({ range: state.range, step: state.step, groupSort: state.groupSort }));
    } catch (e) { /* not kept */ }
  }

  function showSignin(message) {
    stopTimer();
    state.generation++;
    $('main').setAttribute('data-state', message ? 'auth' : 'signin');
    $('dashboard').hidden = true;
    $('controls').hidden = true;
    $('signin').hidden = false;
    hideBanner();
    var err = $('signin-error');
    if (message) { err.textContent = message; err.hidden = false; } else { err.textContent = ''; err.hidden = true; }
    var input = $('key-input');
    input.value = '';
    input.focus();
  }

  function showDashboard() {
    $('signin').hidden = true;
    $('dashboard').hidden = false;
    $('controls').hidden = false;
  }

  function signIn(key) {
    state.key = key;
    storeKey(key);
    state.insightDetails = {};
    showDashboard();
    refreshNow();
  }

  // ---- status and banner ----

  function setStatus(kind, text) {
    var status = $('status');
    status.setAttribute('data-state', kind);
    $('status-text').textContent = text;
    $('main').setAttribute('data-state', kind);
  }

  function showBanner(kind, title, detail) {
    var banner = $('banner');
    banner.className = 'banner show ' + kind;
    replace(banner, el('strong', null, title), detail || '');
  }

  function hideBanner() {
    var banner = $('banner');
    banner.className = 'banner';
    replace(banner);
  }

  // ---- refresh cycle ----

  function stopTimer() {
    if (state.timer) { clearTimeout(state.timer); state.timer = null; }
  }

  function schedule() {
    stopTimer();
    state.timer = setTimeout(refreshNow, REFRESH_MS);
  }

  function refreshNow() {
    if (!state.key) return;
    if (state.running) { state.again = true; return; }
    state.running = true;
    state.again = false;
    stopTimer();
    var generation = state.generation;
    if ($('status').getAttribute('data-state') !== 'ok') setStatus('loading', 'Loading…');
    load().then(function (outcome) {
      if (generation === state.generation) apply(outcome);
    }, function () {
      if (generation === state.generation) {
        setStatus('error', 'Update failed');
        showBanner('error', 'The dashboard could not be updated.', 'It will try again in 15 seconds.');
      }
    }).then(function () {
      state.running = false;
      if (generation !== state.generation || !state.key) return;
      if (state.again) refreshNow();
      else if ($('main').getAttribute('data-state') !== 'auth') schedule();
    });
  }

  function effectiveStep() {
    if (state.step !== 'auto') return state.step;
    return state.range === '24h' ? '5m' : '1m';
  }

  function load() {
    var rangeMs = RANGES[state.range];
    var step = effectiveStep();
    var stepMs = STEP_MS[step];
    var to = Date.now();
    var from = to - rangeMs;
    var fromIso = new Date(from).toISOString();
    var toIso = new Date(to).toISOString();

    var servicesP = settle(collect('v1/services?limit=500', 5));
    var spikesP = settle(collect('v1/spikes?limit=500', 4, function (got) {
      var last = got.length ? parseTime(got[got.length - 1].bucket) : NaN;
      return isFinite(last) && last >= from;
    }));
    var groupsP = settle(request('v1/groups?sort=' + state.groupSort + '&order=desc&limit=12'));
    var clustersP = settle(collect('v1/clusters?limit=500', 2));
    var insightsP = settle(request('v1/insights?limit=10'));
    var recsP = settle(request('v1/recommendations?limit=500'));

    var seriesP = servicesP.then(function (result) {
      if (!result.ok) return result;
      var chosen = result.value.items.slice().sort(function (a, b) {
        return (Number(b.events_last_24h) || 0) - (Number(a.events_last_24h) || 0) || str(a.name).localeCompare(str(b.name));
      }).slice(0, MAX_CHART_SERVICES).sort(function (a, b) { return str(a.name).localeCompare(str(b.name)); });
      return Promise.all(chosen.map(function (service) {
        var url = 'v1/services/' + encodeURIComponent(str(service.name)) + '/series?from=' + encodeURIComponent(fromIso) +
          '&to=' + encodeURIComponent(toIso) + '&step=' + step;
        return settle(request(url)).then(function (r) { return { service: str(service.name), result: r }; });
      })).then(function (list) { return { ok: true, value: list }; });
    });

    var detailsP = Promise.all([insightsP, recsP]).then(function (pair) {
      var insights = pair[0], recs = pair[1];
      if (!insights.ok) return { ok: true, value: {} };
      var byInsight = {};
      var recsComplete = recs.ok && recs.value && recs.value.next_cursor === null;
      if (recs.ok) {
        items(recs.value).forEach(function (r) {
          (byInsight[r.insight_id] = byInsight[r.insight_id] || []).push(r);
        });
      }
      var needed = items(insights.value).filter(function (i) {
        if (i.status === 'open' && recsComplete) return false;
        if (byInsight[i.id] && i.status === 'open') return false;
        var cached = state.insightDetails[i.id];
        return !(cached && cached.updated_at === i.updated_at);
      });
      return Promise.all(needed.slice(0, 10).map(function (i) {
        return settle(request('v1/insights/' + encodeURIComponent(str(i.id)))).then(function (r) {
          if (r.ok && r.value) state.insightDetails[i.id] = { updated_at: i.updated_at, recommendations: r.value.recommendations || [] };
        });
      })).then(function () {
        var result = {};
        items(insights.value).forEach(function (i) {
          if (i.status === 'open' && byInsight[i.id]) result[i.id] = byInsight[i.id];
          else if (i.status === 'open' && recsComplete) result[i.id] = [];
          else if (state.insightDetails[i.id]) result[i.id] = state.insightDetails[i.id].recommendations;
        });
        return { ok: true, value: result };
      });
    });

    return Promise.all([servicesP, seriesP, spikesP, groupsP, clustersP, insightsP, detailsP]).then(function (r) {
      return {
        from: from, to: to, step: step, stepMs: stepMs,
        services: r[0], series: r[1], spikes: r[2], groups: r[3], clusters: r[4], insights: r[5], recommendations: r[6]
      };
    });
  }

  function firstError(outcome) {
    var results = [outcome.services, outcome.spikes, outcome.groups, outcome.clusters, outcome.insights];
    if (outcome.series.ok) outcome.series.value.forEach(function (s) { results.push(s.result); });
    var errors = results.filter(function (r) { return !r.ok; }).map(function (r) { return r.error; });
    var pick = function (kind) { return errors.filter(function (e) { return e.kind === kind; })[0]; };
    return { unauthorized: pick('unauthorized'), forbidden: pick('forbidden'), unreachable: pick('unreachable'), any: errors[0], count: errors.length };
  }

  function apply(outcome) {
    var errors = firstError(outcome);
    if (errors.unauthorized) {
      state.key = null;
      storeKey(null);
      showSignin('The API key was rejected (401 Unauthorized)' + (errors.unauthorized.detail ? ': ' + errors.unauthorized.detail : '') +
        '. Enter a valid key.');
      return;
    }
    if (!outcome.services.ok && outcome.services.error.kind === 'unreachable') {
      setStatus('unreachable', 'API unreachable');
      showBanner('error', 'The Faultline API is unreachable.',
        state.chartData ? 'The data below may be out of date; the dashboard retries every 15 seconds.'
          : 'Check that Faultline is running and reachable from this browser; the dashboard retries every 15 seconds.');
      if (!state.chartData) {
        replace($('error-rate-chart'), el('div', { 'class': 'placeholder' }, 'Waiting for the API…'));
        ['groups', 'insights', 'clusters', 'services'].forEach(function (id) {
          if (!$(id).querySelector('table, article')) replace($(id), el('p', { 'class': 'empty' }, 'No data: the API is unreachable.'));
        });
      }
      return;
    }
    if (errors.forbidden && !outcome.services.ok) {
      setStatus('error', 'Access denied');
      showBanner('error', 'This API key may not read this data (403 Forbidden).',
        (errors.forbidden.detail ? 'Faultline said: “' + errors.forbidden.detail + '”. ' : '') + 'Use a key with the read scope (“Change key”).');
    } else if (errors.any) {
      var e = errors.any;
      var what = e.kind === 'forbidden' ? '403 Forbidden' : e.kind === 'unreachable' ? 'no answer' : (e.status ? 'HTTP ' + e.status : 'error');
      showBanner('warn', 'Part of the dashboard could not be updated (' + what + ').',
        (e.detail ? 'Faultline said: “' + e.detail + '”. ' : '') + 'It will try again in 15 seconds.');
    } else {
      hideBanner();
    }

    if (outcome.services.ok) renderTiles(outcome);
    renderChart(outcome);
    renderGroups(outcome.groups);
    renderClusters(outcome.clusters);
    renderServices(outcome.services);
    renderInsights(outcome.insights, outcome.recommendations);
    if (!errors.any) setStatus('ok', 'Updated ' + clockSeconds(Date.now()));
    else if (!(errors.forbidden && !outcome.services.ok)) setStatus('ok', 'Partly updated ' + clockSeconds(Date.now()));
    $('error-rate-chart').setAttribute('data-updated', new Date().toISOString());
  }

  // ---- summary tiles ----

  function renderTiles(outcome) {
    var services = outcome.services.value.items;
    var events = 0, open = 0;
    services.forEach(function (s) { events += Number(s.events_last_24h) || 0; open += Number(s.open_groups) || 0; });
    $('t-services').textContent = numberFormat.format(services.length);
    $('t-events').textContent = compactFormat.format(events);
    $('t-events').title = numberFormat.format(events);
    $('t-groups').textContent = numberFormat.format(open);
    if (outcome.insights.ok) {
      var openInsights = items(outcome.insights.value).filter(function (i) { return i.status === 'open'; }).length;
      var more = outcome.insights.value.next_cursor ? '+' : '';
      $('t-insights').textContent = openInsights + more;
      $('t-insights').className = 'value' + (openInsights ? ' hot' : '');
    }
  }

  // ---- chart ----

  function niceStep(raw) {
    if (!(raw > 0)) return 1;
    var power = Math.pow(10, Math.floor(Math.log10(raw)));
    var f = raw / power;
    var nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
    return Math.max(1, nice * power);
  }

  function renderChart(outcome) {
    var chart = $('error-rate-chart');
    chart.setAttribute('data-range', state.range);
    chart.setAttribute('data-step', outcome.step);
    $('chart-sub').textContent = 'errors per ' + (outcome.step === '5m' ? '5 minutes' : 'minute') + ', ' + RANGE_TEXT[state.range];
    if (!outcome.services.ok || !outcome.series.ok) {
      if (!state.chartData) {
        chart.setAttribute('data-chart-ready', 'false');
        replace(chart, el('div', { 'class': 'placeholder' }, 'The series could not be loaded.'));
      }
      return;
    }
    var series = [];
    outcome.series.value.forEach(function (entry) {
      if (!entry.result.ok) return;
      var pts = Array.isArray(entry.result.value.points) ? entry.result.value.points : [];
      var points = [];
      pts.forEach(function (p) {
        var t = parseTime(p.time);
        var c = Number(p.count);
        if (isFinite(t) && isFinite(c)) points.push({ t: t, c: c });
      });
      series.push({ name: entry.service, points: points });
    });
    series.forEach(function (s, i) { s.color = COLORS[i % COLORS.length]; });
    var total = outcome.services.value.items.length;
    var spikes = outcome.spikes.ok ? outcome.spikes.value.items : [];
    state.chartData = { series: series, spikes: spikes, from: outcome.from, to: outcome.to, stepMs: outcome.stepMs, step: outcome.step, totalServices: total };
    drawChart();
  }

  function drawChart() {
    var data = state.chartData;
    var chart = $('error-rate-chart');
    if (!data) return;
    var tooltip = el('div', { 'class': 'tooltip', 'aria-hidden': 'true' });
    if (!data.series.length) {
      chart.setAttribute('data-chart-ready', 'empty');
      chart.setAttribute('data-series', '0');
      chart.setAttribute('data-spikes', '0');
      replace(chart, el('div', { 'class': 'placeholder' }, 'No errors have been recorded yet.'));
      replace($('legend'));
      $('t-spikes').textContent = '0';
      return;
    }
    var visible = data.series.filter(function (s) { return !state.hidden[s.name]; });

    var width = Math.max(480, Math.round(chart.clientWidth || 1200));
    var height = 300;
    var m = { left: 52, right: 14, top: 14, bottom: 30 };
    var pw = width - m.left - m.right;
    var ph = height - m.top - m.bottom;
    var x0 = Math.floor(data.from / data.stepMs) * data.stepMs;
    var x1 = data.to;
    var maxY = 0;
    visible.forEach(function (s) { s.points.forEach(function (p) { if (p.c > maxY) maxY = p.c; }); });
    var yStep = niceStep(Math.max(maxY, 4) / 4);
    var yMax = Math.max(yStep * Math.ceil(Math.max(maxY, 1) / yStep), yStep);
    var X = function (t) { return m.left + (t - x0) / (x1 - x0) * pw; };
    var Y = function (c) { return m.top + ph - c / yMax * ph; };
    var fix = function (v) { return Math.round(v * 10) / 10; };

    // Spike markers: one per service and chart bucket, each spike of that bucket in its title.
    var markers = {};
    var seriesByName = {};
    data.series.forEach(function (s) {
      var index = {};
      s.points.forEach(function (p, i) { index[p.t] = i; });
      seriesByName[s.name] = { s: s, index: index };
    });
    data.spikes.forEach(function (spike) {
      var t = parseTime(spike.bucket);
      var entry = seriesByName[str(spike.service)];
      if (!entry || !isFinite(t) || t < x0 || t > x1) return;
      var bucket = Math.floor(t / data.stepMs) * data.stepMs;
      var i = entry.index[bucket];
      if (i === undefined) return;
      var key = entry.s.name + '|' + bucket;
      (markers[key] = markers[key] || { series: entry.s, point: entry.s.points[i], spikes: [] }).spikes.push(spike);
    });
    var markerList = Object.keys(markers).map(function (k) { return markers[k]; })
      .filter(function (mk) { return !state.hidden[mk.series.name]; })
      .sort(function (a, b) { return a.point.t - b.point.t; });
    var spikeCountInRange = 0;
    Object.keys(markers).forEach(function (k) { spikeCountInRange += markers[k].spikes.length; });

    var stepWord = data.step === '5m' ? '5 minutes' : 'minute';
    var summary = 'Line chart of errors per ' + stepWord + ' for ' + visible.length + ' service' + (visible.length === 1 ? '' : 's') +
      ' from ' + fullTime(x0) + ' to ' + fullTime(x1) + '. ' +
      visible.map(function (s) {
        var sum = 0, peak = 0;
        s.points.forEach(function (p) { sum += p.c; if (p.c > peak) peak = p.c; });
        return s.name + ': ' + numberFormat.format(sum) + ' errors, peak ' + numberFormat.format(peak);
      }).join('; ') + '. ' + markerList.length + ' spike marker' + (markerList.length === 1 ? '' : 's') + '.';

    var root = svg('svg', {
      viewBox: '0 0 ' + width + ' ' + height, width: width, height: height, role: 'img',
      'aria-labelledby': 'chart-svg-title chart-svg-desc'
    });
    append(root, svg('title', { id: 'chart-svg-title', text: 'Error rate by service, ' + RANGE_TEXT[state.range] }));
    append(root, svg('desc', { id: 'chart-svg-desc', text: summary }));

    // y axis and grid
    var axis = svg('g', { 'class': 'axis', 'aria-hidden': 'true' });
    for (var v = 0; v <= yMax + 1e-9; v += yStep) {
      var y = fix(Y(v));
      append(axis, svg('line', { 'class': v === 0 ? 'base' : 'gridline', x1: m.left, x2: m.left + pw, y1: y, y2: y }));
      append(axis, svg('text', { x: m.left - 8, y: y + 4, 'text-anchor': 'end', text: compactFormat.format(v) }));
    }
    append(axis, svg('text', {
      x: 12, y: m.top + ph / 2, 'text-anchor': 'middle',
      transform: 'rotate(-90 12 ' + (m.top + ph / 2) + ')', text: 'errors / ' + (data.step === '5m' ? '5 min' : 'min')
    }));

    // x axis: ticks on round local times
    var span = x1 - x0;
    var candidates = [5, 10, 15, 30, 60, 120, 180, 360, 720].map(function (n) { return n * 60e3; });
    var maxTicks = Math.max(3, Math.floor(pw / 90));
    var interval = candidates.filter(function (c) { return span / c <= maxTicks; })[0] || candidates[candidates.length - 1];
    var tzShift = new Date(x0).getTimezoneOffset() * 60e3;
    var tick = Math.ceil((x0 - tzShift) / interval) * interval + tzShift;
    for (; tick <= x1; tick += interval) {
      var tx = fix(X(tick));
      var d = new Date(tick);
      var label = d.getHours() === 0 && d.getMinutes() === 0 && interval >= 3600e3 ? dayLabel(tick) : clock(tick);
      append(axis, svg('line', { 'class': 'gridline', x1: tx, x2: tx, y1: m.top, y2: m.top + ph }));
      append(axis, svg('text', { x: tx, y: m.top + ph + 18, 'text-anchor': 'middle', text: label }));
    }
    append(root, axis);

    // spike bands behind the lines
    var bandW = Math.max(2, pw * data.stepMs / span);
    markerList.forEach(function (mk) {
      append(root, svg('rect', { 'class': 'spike-band', x: fix(X(mk.point.t) - bandW / 2), y: m.top, width: fix(bandW), height: ph, 'aria-hidden': 'true' }));
    });

    // hover surface
    var surface = svg('rect', { x: m.left, y: m.top, width: pw, height: ph, fill: 'transparent', 'aria-hidden': 'true' });
    append(root, surface);

    var lines = svg('g', { 'aria-hidden': 'true' });
    visible.forEach(function (s) {
      if (!s.points.length) return;
      var path = s.points.map(function (p, i) { return (i ? 'L' : 'M') + fix(X(p.t)) + ' ' + fix(Y(p.c)); }).join('');
      var area = path + 'L' + fix(X(s.points[s.points.length - 1].t)) + ' ' + fix(Y(0)) + 'L' + fix(X(s.points[0].t)) + ' ' + fix(Y(0)) + 'Z';
      append(lines, svg('path', { 'class': 'series-area', d: area, fill: s.color }));
      append(lines, svg('path', { 'class': 'series-line', d: path, stroke: s.color, 'data-service': s.name }));
    });
    append(root, lines);

    var crosshair = svg('line', { 'class': 'crosshair', x1: 0, x2: 0, y1: m.top, y2: m.top + ph, visibility: 'hidden', 'aria-hidden': 'true' });
    append(root, crosshair);

    var markerGroup = svg('g', { 'class': 'spikes' });
    markerList.forEach(function (mk) {
      var lines = spikeLines(mk);
      var cx = fix(X(mk.point.t)), cy = fix(Y(mk.point.c));
      var g = svg('g', {
        'class': 'spike-marker', tabindex: '0', role: 'img', 'aria-label': lines.join('. '),
        'data-service': mk.series.name, 'data-bucket': new Date(mk.point.t).toISOString()
      },
      svg('title', { text: lines.join('\n') }),
      svg('circle', { 'class': 'halo', cx: cx, cy: cy, r: 9 }),
      svg('circle', { 'class': 'core', cx: cx, cy: cy, r: 4.5 }));
      g.addEventListener('mouseenter', function () { showSpikeTip(tooltip, chart, mk, lines, X, Y); });
      g.addEventListener('focus', function () { showSpikeTip(tooltip, chart, mk, lines, X, Y); });
      g.addEventListener('mouseleave', function () { tooltip.style.display = 'none'; });
      g.addEventListener('blur', function () { tooltip.style.display = 'none'; });
      append(markerGroup, g);
    });
    append(root, markerGroup);

    root.addEventListener('mousemove', function (event) {
      if (event.target && event.target.closest && event.target.closest('.spike-marker')) return;
      var rect = root.getBoundingClientRect();
      var px = (event.clientX - rect.left) * width / rect.width;
      if (px < m.left || px > m.left + pw || !visible.length) { hideHover(); return; }
      var t = x0 + (px - m.left) / pw * span;
      var bucket = Math.round((t - x0) / data.stepMs) * data.stepMs + x0;
      var cx = X(bucket);
      crosshair.setAttribute('x1', fix(cx));
      crosshair.setAttribute('x2', fix(cx));
      crosshair.setAttribute('visibility', 'visible');
      var rows = visible.map(function (s) {
        var i = seriesByName[s.name].index[bucket];
        var c = i === undefined ? null : s.points[i].c;
        return el('div', { 'class': 't-row' }, el('span', { 'class': 'swatch', style: 'background:' + s.color }), s.name,
          el('span', { 'class': 'v' }, c === null ? '–' : numberFormat.format(c)));
      });
      replace(tooltip, el('div', { 'class': 't-head' }, fullTime(bucket)), rows);
      placeTip(tooltip, chart, cx * rect.width / width, (event.clientY - rect.top));
    });
    root.addEventListener('mouseleave', hideHover);
    function hideHover() { crosshair.setAttribute('visibility', 'hidden'); tooltip.style.display = 'none'; }

    replace(chart, root, tooltip);
    chart.setAttribute('data-series', String(visible.length));
    chart.setAttribute('data-spikes', String(markerList.length));
    chart.setAttribute('data-chart-ready', visible.length ? 'true' : 'false');
    chart.setAttribute('aria-label', 'Error rate chart: ' + visible.length + ' series, ' + markerList.length + ' spike markers');
    $('t-spikes').textContent = numberFormat.format(spikeCountInRange);
    $('t-spikes').className = 'value' + (spikeCountInRange ? ' hot' : '');
    renderLegend(data, markerList.length);
  }

  function spikeLines(mk) {
    var lines = [];
    mk.spikes.slice().sort(function (a, b) {
      return (a.fingerprint ? 1 : 0) - (b.fingerprint ? 1 : 0) || parseTime(a.bucket) - parseTime(b.bucket);
    }).forEach(function (s) {
      var kind = s.kind === 'level_shift' ? 'Level shift' : 'Spike';
      var who = s.fingerprint ? str(s.service) + ' group ' + str(s.fingerprint).slice(0, 12) : str(s.service);
      var obs = Number(s.observed), exp = Number(s.expected), score = Number(s.score);
      lines.push(kind + ' in ' + who + ' at ' + clock(parseTime(s.bucket)) + ': observed ' + fmtNum(obs) + ' vs expected ' + fmtNum(exp) +
        (isFinite(score) ? ' (score ' + score.toFixed(1) + ')' : ''));
    });
    return lines;
  }

  function fmtNum(v) {
    if (!isFinite(v)) return '–';
    return Math.abs(v - Math.round(v)) < 1e-9 ? numberFormat.format(v) : numberFormat.format(Math.round(v * 10) / 10);
  }

  function showSpikeTip(tooltip, chart, mk, lines, X, Y) {
    var svgEl = chart.querySelector('svg');
    if (!svgEl) return;
    var rect = svgEl.getBoundingClientRect();
    var scale = rect.width / Number(svgEl.getAttribute('width'));
    replace(tooltip,
      el('div', { 'class': 't-head' }, fullTime(mk.point.t) + ' · ' + mk.series.name + ' ' + numberFormat.format(mk.point.c)),
      lines.map(function (line) { return el('div', { 'class': 't-spike' }, line); }));
    placeTip(tooltip, chart, X(mk.point.t) * scale, Y(mk.point.c) * scale);
  }

  function placeTip(tooltip, chart, x, y) {
    tooltip.style.display = 'block';
    var w = tooltip.offsetWidth, h = tooltip.offsetHeight, cw = chart.clientWidth;
    var left = x + 14;
    if (left + w > cw) left = x - w - 14;
    if (left < 0) left = 0;
    var top = Math.max(0, y - h / 2);
    tooltip.style.left = Math.round(left) + 'px';
    tooltip.style.top = Math.round(top) + 'px';
  }

  function renderLegend(data, markerCount) {
    var legend = $('legend');
    var entries = data.series.map(function (s) {
      var sum = 0, peak = 0;
      s.points.forEach(function (p) { sum += p.c; if (p.c > peak) peak = p.c; });
      var shown = !state.hidden[s.name];
      var button = el('button', {
        type: 'button', 'aria-pressed': shown ? 'true' : 'false',
        title: (shown ? 'Hide ' : 'Show ') + s.name
      }, el('span', { 'class': 'swatch', style: 'background:' + s.color }), s.name,
        el('span', { 'class': 'stats' }, numberFormat.format(sum) + ' total · peak ' + numberFormat.format(peak)));
      button.addEventListener('click', function () {
        if (state.hidden[s.name]) delete state.hidden[s.name];
        else state.hidden[s.name] = true;
        drawChart();
      });
      return el('li', null, button);
    });
    var extra = [];
    if (data.totalServices > data.series.length) {
      extra.push(el('li', { 'class': 'spike-key' }, 'Showing the ' + data.series.length + ' busiest of ' + data.totalServices + ' services'));
    }
    extra.push(el('li', { 'class': 'spike-key' }, el('span', { 'class': 'swatch' }),
      markerCount + ' spike marker' + (markerCount === 1 ? '' : 's') + ' (hover for observed vs expected)'));
    replace(legend, entries, extra);
  }

  // ---- groups ----

  function statusChip(status) {
    var s = str(status);
    var cls = s === 'open' || s === 'resolved' || s === 'ignored' ? s : 'other';
    return el('span', { 'class': 'chip ' + cls }, s || 'unknown');
  }

  function renderGroups(result) {
    var box = $('groups');
    $('groups-sub').textContent = state.groupSort === 'event_count' ? 'by event count' : 'by last seen';
    if (!result.ok) {
      if (!box.querySelector('table')) replace(box, el('p', { 'class': 'section-error' }, 'The groups could not be loaded.'));
      return;
    }
    var list = items(result.value);
    if (!list.length) { replace(box, el('p', { 'class': 'empty' }, 'No error groups yet.')); return; }
    var head = el('thead', null, el('tr', null,
      el('th', { scope: 'col', style: 'width: 12%' }, 'Service'),
      el('th', { scope: 'col', style: 'width: 17%' }, 'Error type'),
      el('th', { scope: 'col' }, 'Template'),
      el('th', { scope: 'col', 'class': 'num', style: 'width: 9%' }, 'Events'),
      el('th', { scope: 'col', style: 'width: 12%' }, 'Last seen'),
      el('th', { scope: 'col', style: 'width: 9%' }, 'Status')));
    var body = el('tbody', null, list.map(function (g) {
      var template = str(g.template);
      var versions = [g.first_version, g.last_version].filter(function (v) { return typeof v === 'string' && v; });
      var tip = template + '\nfingerprint ' + str(g.fingerprint) + (versions.length ? '\nversions ' + versions.join(' → ') : '');
      return el('tr', null,
        el('td', null, el('span', { 'class': 'svc' }, str(g.service))),
        el('td', null, g.error_type ? el('span', { 'class': 'etype' }, str(g.error_type)) : el('span', { 'class': 'dim' }, '—')),
        el('td', null, el('div', { 'class': 'template', title: tip }, template)),
        el('td', { 'class': 'num' }, numberFormat.format(Number(g.event_count) || 0)),
        el('td', null, timeEl(g.last_seen)),
        el('td', null, statusChip(g.status)));
    }));
    replace(box, el('table', { 'aria-labelledby': 'groups-title' }, head, body));
  }

  // ---- clusters ----

  function renderClusters(result) {
    var box = $('clusters');
    if (!result.ok) {
      if (!box.querySelector('table')) replace(box, el('p', { 'class': 'section-error' }, 'The clusters could not be loaded.'));
      return;
    }
    var list = result.value.items.slice().sort(function (a, b) {
      return (Number(b.event_count) || 0) - (Number(a.event_count) || 0);
    });
    if (!list.length) { replace(box, el('p', { 'class': 'empty' }, 'No clusters yet.')); return; }
    var head = el('thead', null, el('tr', null,
      el('th', { scope: 'col' }, 'Cluster'),
      el('th', { scope: 'col', style: 'width: 36%' }, 'Services'),
      el('th', { scope: 'col', 'class': 'num', style: 'width: 88px' }, 'Groups')));
    var body = el('tbody', null, list.slice(0, 15).map(function (c) {
      var services = Array.isArray(c.services) ? c.services : [];
      var terms = Array.isArray(c.terms) ? c.terms.map(str).join(', ') : '';
      return el('tr', null,
        el('td', null, el('div', { title: terms ? 'terms: ' + terms : null }, str(c.label)),
          el('div', { 'class': 'dim', style: 'font-size: 12px' }, numberFormat.format(Number(c.event_count) || 0) + ' events')),
        el('td', null, services.map(function (s) { return el('span', { 'class': 'svc' }, str(s)); })),
        el('td', { 'class': 'num' }, numberFormat.format(Number(c.group_count) || 0)));
    }));
    var nodes = [el('table', { 'aria-labelledby': 'clusters-title' }, head, body)];
    if (list.length > 15) nodes.push(el('p', { 'class': 'dim' }, 'and ' + (list.length - 15) + ' more'));
    replace(box, nodes);
  }

  // ---- services ----

  // While the analysis learns a service, when it reports what.
  function learningEl(learning) {
    if (!learning || learning.state !== 'learning') return null;
    var spikes = parseTime(learning.spikes_from), fresh = parseTime(learning.new_errors_from);
    var parts = [];
    if (isFinite(spikes) && spikes > Date.now()) parts.push('spikes from ' + clock(spikes));
    if (isFinite(fresh) && fresh > Date.now()) parts.push('new errors from ' + clock(fresh));
    if (!parts.length) return null;
    return el('span', { 'class': 'learning', title: 'The analysis is learning what is usual for this service: ' + parts.join(', ') +
      ' (errors new in a release are reported at once).' }, 'learning · ' + parts.join(' · '));
  }

  function renderServices(result) {
    var box = $('services');
    if (!result.ok) {
      if (!box.querySelector('table')) replace(box, el('p', { 'class': 'section-error' }, 'The services could not be loaded.'));
      return;
    }
    var list = result.value.items;
    if (!list.length) { replace(box, el('p', { 'class': 'empty' }, 'No services have reported errors yet.')); return; }
    var colors = {};
    if (state.chartData) state.chartData.series.forEach(function (s) { colors[s.name] = s.color; });
    var head = el('thead', null, el('tr', null,
      el('th', { scope: 'col' }, 'Service'),
      el('th', { scope: 'col', 'class': 'num', style: 'width: 64px' }, 'Open'),
      el('th', { scope: 'col', 'class': 'num', style: 'width: 76px' }, '24 h'),
      el('th', { scope: 'col', style: 'width: 96px' }, 'Last seen')));
    var body = el('tbody', null, list.map(function (s) {
      var name = str(s.name);
      return el('tr', null,
        el('td', null, colors[name] ? el('span', { 'class': 'swatch', style: 'margin-right: 7px; background:' + colors[name] }) : null, name,
          learningEl(s.learning)),
        el('td', { 'class': 'num', title: numberFormat.format(Number(s.groups) || 0) + ' groups in all' }, numberFormat.format(Number(s.open_groups) || 0)),
        el('td', { 'class': 'num', title: numberFormat.format(Number(s.events_last_24h) || 0) + ' errors' }, compactFormat.format(Number(s.events_last_24h) || 0)),
        el('td', null, timeEl(s.last_seen)));
    }));
    replace(box, el('table', { 'aria-labelledby': 'services-title' }, head, body));
  }

  // ---- insights ----

  function renderInsights(result, recsResult) {
    var box = $('insights');
    if (!result.ok) {
      if (!box.querySelector('article')) replace(box, el('p', { 'class': 'section-error' }, 'The insights could not be loaded.'));
      return;
    }
    var recsBy = recsResult.ok ? recsResult.value : {};
    var list = items(result.value).slice().sort(function (a, b) {
      return parseTime(b.created_at) - parseTime(a.created_at) || (Number(b.id) || 0) - (Number(a.id) || 0);
    });
    if (!list.length) { replace(box, el('p', { 'class': 'empty' }, 'No insights yet.')); return; }
    replace(box, el('div', { 'class': 'insights' }, list.map(function (insight) {
      return renderInsight(insight, recsBy[insight.id]);
    })));
  }

  function renderInsight(i, recs) {
    var severity = i.severity === 'critical' || i.severity === 'warning' ? i.severity : 'info';
    var titleId = 'insight-' + String(Number(i.id) || 0);
    var meta = [];
    if (i.service) meta.push(str(i.service));
    if (i.environment) meta.push(str(i.environment));
    if (i.previous_version && i.version) meta.push(str(i.previous_version) + ' → ' + str(i.version));
    else if (i.version) meta.push('version ' + str(i.version));
    var obs = Number(i.observed), exp = Number(i.expected);
    if (i.observed !== null && i.observed !== undefined && isFinite(obs)) {
      meta.push('observed ' + fmtNum(obs) + (i.expected !== null && i.expected !== undefined && isFinite(exp) ? ' vs expected ' + fmtNum(exp) : ''));
    }
    if (i.event_count !== null && i.event_count !== undefined && isFinite(Number(i.event_count))) {
      meta.push(numberFormat.format(Number(i.event_count)) + ' events');
    }
    var recNodes = null;
    if (Array.isArray(recs) && recs.length) {
      var sorted = recs.slice().sort(function (a, b) { return (Number(a.position) || 0) - (Number(b.position) || 0); });
      recNodes = [
        el('h4', { 'class': 'recs-title' }, 'Recommended actions'),
        el('ol', { 'class': 'recs' }, sorted.map(function (r) {
          var conf = Math.max(0, Math.min(1, Number(r.confidence) || 0));
          var pct = Math.round(conf * 100);
          var evidence = Array.isArray(r.evidence) ? r.evidence : [];
          return el('li', { 'class': 'rec' },
            el('div', { 'class': 'rec-head' },
              el('span', { 'class': 'rec-title' }, str(r.title)),
              el('span', { 'class': 'conf', title: 'confidence ' + pct + '%' },
                el('span', { 'class': 'bar', 'aria-hidden': 'true' }, el('span', { style: 'width:' + pct + '%' })),
                pct + '% confidence')),
            evidence.length ? el('ul', { 'class': 'evidence', 'aria-label': 'Evidence' }, evidence.map(function (line) { return el('li', null, str(line)); })) : null);
        }))
      ];
    } else if (Array.isArray(recs)) {
      recNodes = el('p', { 'class': 'dim', style: 'margin: 8px 0 0; font-size: 12.5px' }, 'No recommended actions.');
    }
    return el('article', { 'class': 'insight ' + severity, 'aria-labelledby': titleId },
      el('div', { 'class': 'insight-head' },
        el('span', { 'class': 'badge ' + severity }, severity),
        el('span', { 'class': 'kind' }, KIND_TEXT[i.kind] || str(i.kind)),
        i.status === 'acknowledged' ? el('span', { 'class': 'acked' }, 'acknowledged') : null,
        timeEl(i.created_at, 'when')),
      el('h3', { id: titleId }, str(i.title)),
      meta.length ? el('p', { 'class': 'meta' }, meta.join(' · ')) : null,
      i.summary ? el('p', { 'class': 'summary' }, str(i.summary)) : null,
      recNodes);
  }

  // ---- wiring ----

  function syncControls() {
    Array.prototype.forEach.call($('range').querySelectorAll('button'), function (b) {
      b.setAttribute('aria-pressed', b.getAttribute('data-range') === state.range ? 'true' : 'false');
    });
    $('step').value = state.step;
    $('group-sort').value = state.groupSort;
  }

  function init() {
    $('tz').textContent = tzText();
    loadPrefs();
    var key = takeKeyFromFragment();
    savePrefs();
    syncControls();

    $('range').addEventListener('click', function (event) {
      var button = event.target.closest ? event.target.closest('button[data-range]') : null;
      if (!button) return;
      state.range = button.getAttribute('data-range');
      if (state.range !== '24h' && state.step === '5m') { /* allowed: coarser view */ }
      savePrefs();
      syncControls();
      refreshNow();
    });
    $('step').addEventListener('change', function () { state.step = $('step').value; savePrefs(); refreshNow(); });
    $('group-sort').addEventListener('change', function () { state.groupSort = $('group-sort').value; savePrefs(); refreshNow(); });
    $('refresh').addEventListener('click', refreshNow);
    $('signout').addEventListener('click', function () {
      state.key = null;
      storeKey(null);
      state.chartData = null;
      showSignin(null);
    });
    $('signin-form').addEventListener('submit', function (event) {
      event.preventDefault();
      var key = $('key-input').value.trim();
      if (!key) return;
      $('key-input').value = '';
      signIn(key);
    });
    window.addEventListener('hashchange', function () {
      var key = takeKeyFromFragment();
      savePrefs();
      syncControls();
      if (key) signIn(key);
      else if (state.key) refreshNow();
    });
    var resizeTimer = null;
    window.addEventListener('resize', function () {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(drawChart, 150);
    });
    document.addEventListener('visibilitychange', function () {
      if (!document.hidden && state.key && !state.running) refreshNow();
    });

    if (key) storeKey(key);
    else key = readStoredKey();
    if (key) signIn(key);
    else showSignin(null);
  }

  init();
})();
