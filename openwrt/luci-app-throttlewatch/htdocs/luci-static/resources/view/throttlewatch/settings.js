'use strict';
'require view';
'require form';
'require widgets';

// Status -> Throttlewatch -> Settings: section 'main' of /etc/config/throttlewatch. Save &
// Apply commits the file; the init script's reload trigger then sends the daemon SIGHUP (a
// file it rejects leaves the old configuration running: see `logread -e throttlewatch`), or
// starts or stops it when 'enabled' changed. The limits below are the daemon's own.

return view.extend({
	render: function() {
		var m, s, o;

		m = new form.Map('throttlewatch', _('Throttlewatch'),
			_('Watches the traffic crossing this router for throttling of messenger services.'));

		s = m.section(form.NamedSection, 'main', 'throttlewatch', _('Settings'));
		s.addremove = false;

		o = s.option(form.Flag, 'enabled', _('Enabled'));
		o.rmempty = false;

		o = s.option(widgets.DeviceSelect, 'interface', _('Interfaces'),
			_('Where to capture: usually the LAN bridge, which sees every client\'s traffic. At least one.'));
		o.multiple = true;
		o.noaliases = true;
		o.rmempty = false;

		o = s.option(form.Value, 'window', _('Window (seconds)'),
			_('Traffic is judged per window of this length: 1 to 86400 seconds. Shorter windows answer sooner, with fewer flows to compare.'));
		o.datatype = 'and(uinteger,range(1,86400))';
		o.placeholder = '60';

		o = s.option(form.Value, 'snaplen', _('Capture length (bytes)'),
			_('Bytes kept of each packet: the headers and the start of DNS answers, TLS and STUN messages. 64 to 65535.'));
		o.datatype = 'and(uinteger,range(64,65535))';
		o.placeholder = '256';

		o = s.option(form.ListValue, 'control_sample', _('Sample of other traffic'),
			_('Traffic of the messenger services and calls\' media are always captured; of the other flows, which serve as the comparison, 1 in this many (all, the default, compares best; a sample lightens the load of a busy link).'));
		[ '1', '2', '4', '8', '16', '32', '64' ].forEach(function(n) { o.value(n, n === '1' ? _('all') : '1 / ' + n); });
		o.default = '1';

		o = s.option(form.Value, 'listen', _('Metrics address'),
			_('Prometheus metrics at http://ADDRESS/metrics, on a loopback address (127.0.0.1:9737 when empty).'));
		o.datatype = 'ipaddrport(1)';
		o.placeholder = '127.0.0.1:9737';
		o.validate = function(section_id, value) {
			// The daemon refuses other addresses: the metrics name the services in use.
			if (value && !/^(127\.\d+\.\d+\.\d+|\[::1\]):\d+$/.test(value))
				return _('Use a loopback address, such as 127.0.0.1:9737');
			return true;
		};

		o = s.option(form.Value, 'user', _('Run as user'),
			_('After opening the captures the daemon continues as this user; the package creates \'throttlewatch\'. It must be able to write the folder of the files below.'));
		o.placeholder = 'throttlewatch';
		o.validate = function(section_id, value) {
			if (value && !/^[a-z_][a-z0-9_-]*$/.test(value))
				return _('A user name: lower-case letters, digits, \'_\' and \'-\'');
			return true;
		};

		o = s.option(form.Value, 'history', _('History file'),
			_('Per-service, per-hour record of download speeds, to compare today with the usual. Under /var/run it lives in RAM (lost at reboot, sparing the flash).'));
		o.placeholder = '/var/run/throttlewatch/history.json';
		o.validate = function(section_id, value) {
			if (value && value.charAt(0) !== '/')
				return _('An absolute path, starting with /');
			return true;
		};

		return m.render();
	}
});
