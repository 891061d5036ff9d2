// A stand-in for the few parts of LuCI's browser runtime that view/throttlewatch/status.js
// uses. LuCI itself (luci.js with its rpcd/ubus back end) only runs on a router, so the
// headless-browser test in tests/openwrt.rs loads the view through this shim instead. It
// copies LuCI's behaviour where the view depends on it:
// - a view module is the body of a function whose parameters are named after its 'require'
//   lines, and it returns view.extend({...});
// - E(tag, attrs, children): array members become text nodes, a bare string becomes HTML;
//   function-valued attributes become event listeners;
// - fs.read(path) resolves to the file's text, or rejects with an Error named
//   'NotFoundError' when the file does not exist (rpcd's code 4);
// - poll.add(fn, seconds) registers fn; here the harness calls it on demand.
'use strict';

var shim = {
	files: {},
	polls: []
};

function E(tag, attrs, children) {
	var node = document.createElement(tag);
	if (Array.isArray(attrs) || typeof attrs === 'string' || attrs instanceof Node) {
		children = attrs;
		attrs = null;
	}
	Object.keys(attrs || {}).forEach(function(key) {
		var value = attrs[key];
		if (value == null)
			return;
		if (typeof value === 'function')
			node.addEventListener(key, value);
		else
			node.setAttribute(key, typeof value === 'object' ? JSON.stringify(value) : value);
	});
	if (Array.isArray(children))
		children.forEach(function(child) {
			if (child instanceof Node)
				node.appendChild(child);
			else if (child != null)
				node.appendChild(document.createTextNode(String(child)));
		});
	else if (children instanceof Node)
		node.appendChild(children);
	else if (children != null)
		node.innerHTML = String(children);
	return node;
}

// No translations: the English source strings.
function _(text) {
	return text;
}

var view = {
	extend: function(proto) {
		function View() {}
		View.prototype = proto;
		return View;
	}
};

var fs = {
	read: function(path) {
		var text = shim.files[path];
		if (typeof text === 'string')
			return Promise.resolve(text);
		var err = new Error('Resource not found');
		err.name = 'NotFoundError';
		return Promise.reject(err);
	}
};

var poll = {
	add: function(fn, interval) {
		shim.polls.push({ fn: fn, interval: interval });
	}
};

var ui = {
	createHandlerFn: function(ctx, fn) {
		return function(ev) {
			return (typeof fn === 'string' ? ctx[fn] : fn).call(ctx, ev);
		};
	}
};

// Compile a view's source as LuCI does and return its class.
function loadView(source) {
	return new Function('view', 'fs', 'poll', 'ui', source)(view, fs, poll, ui);
}
