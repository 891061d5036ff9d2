'use strict';
'require view';
'require fs';
'require poll';
'require ui';

// Status -> Throttlewatch: the latest verdict per service, in plain words, from the status
// file the daemon replaces after every window (schema throttlewatch.status/1). The ACL
// (luci-app-throttlewatch.json) lets this page read that one file and nothing else, so the
// UCI option 'status' must keep its default path for the page to work.
//
// Strings from the file are always passed to E() inside an array: LuCI's E() turns array
// members into text nodes, but a bare string into HTML.

var STATUS_FILE = '/var/run/throttlewatch/status.json';
var SCHEMA = 'throttlewatch.status/1';

// What each finding is called, and how it is shown: 'bad' findings first, then the rest.
function findingInfo(finding) {
	switch (finding) {
	case 'throttled': return { label: _('Throttled'), badge: 'important', rank: 0 };
	case 'reset': return { label: _('Connections reset'), badge: 'important', rank: 0 };
	case 'stalled': return { label: _('Transfers stalled'), badge: 'important', rank: 0 };
	case 'blocked': return { label: _('Blocked'), badge: 'important', rank: 0 };
	case 'call_degraded': return { label: _('Calls degraded'), badge: 'warning', rank: 0 };
	case 'inconclusive': return { label: _('Inconclusive'), badge: 'notice', rank: 1 };
	case 'none': return { label: _('No interference seen'), badge: 'success', rank: 2 };
	default: return { label: String(finding), badge: 'notice', rank: 1 };
	}
}

function mechanismText(mechanism) {
	switch (mechanism) {
	case 'policing': return _('a policer drops packets above a fixed rate');
	case 'shaping': return _('a shaper queues packets to hold them to a fixed rate, so delays grow');
	case 'rst_injection': return _('an injected TCP reset: a device on the path closes the connection in the server\'s name');
	case 'freeze': return _('the server\'s data stops mid-transfer and the connection is left open, silent');
	case 'drop': return _('packets are dropped: connection attempts or call setup get no answer');
	case 'reject': return _('connection attempts are refused in the server\'s name: a TCP reset or an ICMP error answers them');
	default: return mechanism ? String(mechanism) : null;
	}
}

// "2026-11-27T18:04:00Z" -> "2026-11-27 18:04:00" (the daemon writes UTC).
function utc(iso) {
	return String(iso || '?').replace('T', ' ').replace(/(\.\d+)?Z$/, '');
}

function windowText(w) {
	if (!w)
		return '?';
	var start = utc(w.start), end = utc(w.end);
	// Same day: show the date once.
	if (start.slice(0, 10) === end.slice(0, 10))
		end = end.slice(11);
	return start + ' – ' + end + ' UTC';
}

// A counter from the file, or '?' where it is missing.
function num(n) {
	return (typeof(n) === 'number') ? String(n) : '?';
}

function rateText(bps) {
	if (bps >= 1e6)
		return (bps / 1e6).toFixed(1) + ' Mbit/s';
	return Math.round(bps / 1e3) + ' kbit/s';
}

function pText(p) {
	return p < 0.001 ? p.toExponential(1) : String(Number(p.toPrecision(2)));
}

// One evidence number, named and shown in its unit; the key's suffix says the unit.
function evidenceItem(key, value) {
	var m = /^(?:(.*)_)?(bps|bytes|ms|us|s|p)$/.exec(key);
	var name = (m ? m[1] || '' : key).replace(/_/g, ' ');
	switch (m ? m[2] : '') {
	case 'bps': return name + ' ' + rateText(value);
	case 'bytes': return name + ' ' + (value >= 1000 ? (value / 1000).toFixed(1) + ' kB' : value + ' B');
	case 'ms': return name + ' ' + value + ' ms';
	case 'us': return name + ' ' + (value / 1000).toFixed(1) + ' ms';
	case 's': return name + ' ' + value + ' s';
	case 'p': return 'p-value' + (name ? ' (' + name + ')' : '') + ' ' + pText(value);
	default: return name + ' ' + (Number.isInteger(value) ? value : Number(value.toPrecision(3)));
	}
}

// The numbers directly in an evidence object (nested lists and objects are left out).
function evidenceNumbers(evidence, limit) {
	var out = [];
	Object.keys(evidence || {}).forEach(function(key) {
		var v = evidence[key];
		if (typeof(v) === 'number' && isFinite(v) && out.length < limit)
			out.push(evidenceItem(key, v));
	});
	return out;
}

function verdictNode(v) {
	var info = findingInfo(v.finding);
	var ev = v.evidence || {};
	var details = [];

	// A confidence belongs to findings only: 'none' and 'inconclusive' carry 0.
	if (info.rank === 0 && typeof(v.confidence) === 'number')
		details.push(E('li', {}, [ _('Confidence') + ': ' + Math.round(v.confidence * 100) + ' %' ]));

	var mech = mechanismText(v.mechanism);
	if (mech)
		details.push(E('li', {}, [ _('How') + ': ' + mech ]));

	var numbers = evidenceNumbers(ev, 6);
	if (numbers.length)
		details.push(E('li', {}, [ _('Evidence') + ': ' + numbers.join(', ') ]));

	// Inconclusive: why, per detector.
	if (ev.reasons && typeof(ev.reasons) === 'object')
		Object.keys(ev.reasons).forEach(function(detector) {
			details.push(E('li', {}, [ _('Not decided') + ' (' + detector + '): ' + ev.reasons[detector] ]));
		});

	// None (and inconclusive): what was checked, with each check's own numbers.
	if (ev.checked && typeof(ev.checked) === 'object')
		details.push(E('li', {}, [ _('Checked') + ': ' + Object.keys(ev.checked).map(function(detector) {
			var n = evidenceNumbers(ev.checked[detector], 2);
			return n.length ? detector + ' (' + n.join(', ') + ')' : detector;
		}).join('; ') ]));

	if (Array.isArray(v.flows) && v.flows.length)
		details.push(E('li', {}, [ _('Example flows (ids in the events file)') + ': ' + v.flows.join(', ') ]));

	details.push(E('li', {}, [ _('Window') + ': ' + windowText(v.window) ]));

	return E('div', { 'class': 'throttlewatch-verdict', 'data-finding': v.finding }, [
		E('p', {}, [
			E('span', { 'class': 'label ' + info.badge }, [ info.label ]),
			' ',
			E('span', { 'class': 'throttlewatch-summary' }, [ v.summary || '' ])
		]),
		E('ul', {}, details)
	]);
}

// An SVG element (LuCI's E() makes HTML ones); attributes set, children appended.
function S(tag, attrs, children) {
	var node = document.createElementNS('http://www.w3.org/2000/svg', tag);
	Object.keys(attrs || {}).forEach(function(k) { node.setAttribute(k, attrs[k]); });
	(children || []).forEach(function(c) {
		node.appendChild(typeof(c) === 'string' ? document.createTextNode(c) : c);
	});
	return node;
}

// The service's latest windows (status services[].recent, oldest first): its throughput
// towards the clients (solid line) against the ordinary traffic's (dashed), and under them
// each window's finding as a bar: tall and vermilion for a finding, half height and grey for
// inconclusive, a thin green line for none (told apart by height as well as by colour, for
// greyscale and colour blindness). Each bar names its window and finding on hover.
function chartNode(recent) {
	if (!Array.isArray(recent) || !recent.length)
		return null;
	var w = 320, h = 72, plot = 48, n = recent.length;
	var max = Math.max.apply(null, recent.map(function(p) {
		return Math.max(p.target_bps || 0, p.control_bps || 0);
	})) || 1;
	var x = function(i) { return n > 1 ? 4 + i * (w - 8) / (n - 1) : w / 2; };
	var y = function(v) { return 4 + (plot - 8) * (1 - Math.min(v || 0, max) / max); };
	var line = function(key, dash) {
		var points = recent.map(function(p, i) { return x(i).toFixed(1) + ',' + y(p[key]).toFixed(1); });
		var attrs = { 'class': 'throttlewatch-' + key, 'points': points.join(' '), 'fill': 'none',
			'stroke': dash ? '#0072b2' : 'currentColor', 'stroke-width': '2' };
		if (dash)
			attrs['stroke-dasharray'] = '4 3';
		return S('polyline', attrs);
	};
	var bars = recent.map(function(p, i) {
		var rank = findingInfo(p.finding).rank;
		var height = [ 14, 8, 2 ][rank];
		var colour = [ '#d55e00', '#999999', '#009e73' ][rank];
		return S('rect', { 'class': 'throttlewatch-mark', 'data-finding': p.finding,
			'x': (x(i) - 5).toFixed(1), 'y': h - height, 'width': 10, 'height': height, 'fill': colour },
			[ S('title', {}, [ utc(p.end) + ' UTC: ' + findingInfo(p.finding).label ]) ]);
	});
	var svg = S('svg', { 'class': 'throttlewatch-chart', 'width': w, 'height': h,
		'viewBox': '0 0 ' + w + ' ' + h, 'role': 'img',
		'aria-label': _('Throughput and findings of the latest windows') },
		[ line('control_bps', true), line('target_bps', false) ].concat(bars));
	return E('div', { 'class': 'throttlewatch-recent' }, [
		svg,
		E('p', {}, [ _('Latest %d windows, oldest left: this service towards the clients (solid line) and the other traffic (dashed), up to %s; below, each window\'s finding (tall: interference found, half: inconclusive, thin: none).')
			.replace('%d', n).replace('%s', rateText(max)) ])
	]);
}

// The verdicts of each service's latest window, worst first; and the services without any.
function latestByService(status) {
	var names = {}, recent = {}, latest = {};
	(status.services || []).forEach(function(s) { names[s.id] = s.name || s.id; recent[s.id] = s.recent; });
	(status.verdicts || []).forEach(function(v) {
		var end = (v.window && v.window.end) || '';
		var cur = latest[v.service];
		if (!cur || end > cur.end)
			latest[v.service] = { end: end, verdicts: [ v ] };
		else if (end === cur.end)
			cur.verdicts.push(v);
	});
	var rows = Object.keys(latest).map(function(id) {
		var vs = latest[id].verdicts;
		var rank = Math.min.apply(null, vs.map(function(v) { return findingInfo(v.finding).rank; }));
		return { id: id, name: names[id] || id, rank: rank, verdicts: vs, recent: recent[id] };
	});
	rows.sort(function(a, b) { return a.rank - b.rank || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0); });
	var quiet = (status.services || []).filter(function(s) { return !latest[s.id]; })
		.map(function(s) { return s.name || s.id; });
	return { rows: rows, quiet: quiet };
}

function captureNode(status) {
	var nodes = [];
	var updated = Date.parse(status.updated);
	var window_s = status.window_s || 60;

	nodes.push(E('p', {}, [
		_('Updated') + ' ' + utc(status.updated) + ' UTC, ' + _('every') + ' ' + window_s + ' s; ' +
		_('running since') + ' ' + utc(status.started) + ' UTC (throttlewatch ' + (status.version || '?') + ').'
	]));

	// The daemon rewrites the file every window: an old one means it stopped.
	if (isFinite(updated) && Date.now() - updated > 3 * window_s * 1000)
		nodes.push(E('div', { 'class': 'alert-message warning' }, [
			_('This status is older than three windows: is throttlewatch still running?')
		]));

	var drops = false;
	var rows = (status.interfaces || []).map(function(i) {
		if (i.kernel_drops > 0 || i.interface_drops > 0)
			drops = true;
		return E('tr', { 'class': 'tr' }, [
			E('td', { 'class': 'td' }, [ i.name ]),
			E('td', { 'class': 'td' }, [ num(i.packets) ]),
			E('td', { 'class': 'td' }, [ num(i.kernel_drops) ]),
			E('td', { 'class': 'td' }, [ num(i.interface_drops) ])
		]);
	});
	nodes.push(E('table', { 'class': 'table' }, [
		E('tr', { 'class': 'tr table-titles' }, [
			E('th', { 'class': 'th' }, [ _('Interface') ]),
			E('th', { 'class': 'th' }, [ _('Packets captured') ]),
			E('th', { 'class': 'th' }, [ _('Dropped by the kernel') ]),
			E('th', { 'class': 'th' }, [ _('Dropped by the interface') ])
		])
	].concat(rows)));
	if (drops)
		nodes.push(E('div', { 'class': 'alert-message warning' }, [
			_('The capture lost packets (drops above): the router was too busy to copy them all, so verdicts rest on less data.')
		]));

	var f = status.flows || {};
	nodes.push(E('p', {}, [
		_('Flows tracked') + ': ' + num(f.active) + ' / ' + num(f.max) + '; ' + _('evicted') + ' ' +
		num(f.evicted) + ', ' + _('refused (table full)') + ' ' + num(f.refused) + '.'
	]));
	return nodes;
}

function statusNodes(data) {
	if (data.error)
		return [ E('div', { 'class': 'alert-message warning throttlewatch-error' }, [ data.error ]) ];

	var status = data.status;
	var nodes = [];

	// Flow offloading sends forwarded packets past the capture: say so before anything else.
	if (status.offload && status.offload.warning)
		nodes.push(E('div', { 'class': 'alert-message error throttlewatch-offload' }, [
			E('strong', {}, [ _('Flow offloading is on') + ': ' ]),
			status.offload.warning
		]));

	var services = latestByService(status);
	nodes.push(E('h3', {}, [ _('Latest verdict per service') ]));
	if (!services.rows.length)
		nodes.push(E('p', {}, [ _('No verdict yet: the first window has not ended, or no messenger traffic was seen.') ]));
	services.rows.forEach(function(row) {
		var chart = chartNode(row.recent);
		nodes.push(E('div', { 'class': 'cbi-section throttlewatch-service', 'data-service': row.id }, [
			E('h4', {}, [ row.name ])
		].concat(chart ? [ chart ] : [], row.verdicts.map(verdictNode))));
	});
	if (services.quiet.length)
		nodes.push(E('p', {}, [ _('No traffic seen in the latest windows from') + ': ' + services.quiet.join(', ') + '.' ]));

	nodes.push(E('h3', {}, [ _('Capture') ]));
	return nodes.concat(captureNode(status));
}

// Resolves to { status } or { error: message }; never rejects.
function loadStatus() {
	return fs.read(STATUS_FILE).then(function(text) {
		var status;
		try {
			status = JSON.parse(text);
		}
		catch (e) {
			return { error: _('The status file %s is not valid JSON').replace('%s', STATUS_FILE) + ': ' + e.message };
		}
		if (!status || status.schema !== SCHEMA)
			return { error: _('The status file %s is not of the expected format').replace('%s', STATUS_FILE) +
				' (' + SCHEMA + ')' };
		return { status: status };
	}, function(err) {
		var name = err && err.name;
		if (name === 'NotFoundError')
			return { error: _('No status yet: %s does not exist. Is throttlewatch enabled and running (Settings tab, or /etc/init.d/throttlewatch start)? The file appears after the first window.').replace('%s', STATUS_FILE) };
		if (name === 'PermissionError')
			return { error: _('This page may not read %s: check that luci-app-throttlewatch is installed completely.').replace('%s', STATUS_FILE) };
		return { error: _('Cannot read the status file %s').replace('%s', STATUS_FILE) + ': ' + ((err && err.message) || err) };
	});
}

function show(container, data) {
	while (container.firstChild)
		container.removeChild(container.firstChild);
	statusNodes(data).forEach(function(node) { container.appendChild(node); });
}

return view.extend({
	load: function() {
		return loadStatus();
	},

	render: function(data) {
		var container = E('div', { 'id': 'throttlewatch-status' });
		var refresh = function() {
			return loadStatus().then(function(d) { show(container, d); });
		};

		show(container, data);
		poll.add(refresh, 10);

		return E('div', {}, [
			E('h2', {}, [ _('Throttlewatch') ]),
			E('div', { 'class': 'cbi-map-descr' }, [
				_('Whether messenger services are throttled, reset, stalled or blocked, judged by comparing their traffic with the other traffic crossing this router in the same time window. Refreshed every 10 seconds.')
			]),
			E('div', { 'class': 'right' }, [
				E('button', { 'class': 'cbi-button', 'click': ui.createHandlerFn(this, refresh) }, [ _('Refresh now') ])
			]),
			container
		]);
	},

	handleSave: null,
	handleSaveApply: null,
	handleReset: null
});
