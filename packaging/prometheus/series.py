#!/usr/bin/env python3
"""Turn /metrics snapshots of a daemon, fetched at a fixed interval during a lab run, into
promtool `input_series` (the `router-a`/`router-b` series of throttlewatch.test.yml).

    python3 packaging/prometheus/series.py INSTANCE DOWN_SCRAPES SNAPSHOT...

Each snapshot is one scrape, in order (an empty file: the scrape failed). Every series gets
the labels Prometheus adds (`instance`, `job="throttlewatch"`), `_` where a scrape lacked it,
and `up` is written as a scrape would set it. DOWN_SCRAPES failed scrapes follow the last
one (the daemon stopped): `up` 0, and the daemon's series end with a staleness marker as
Prometheus writes them when a target stops answering.
"""
import sys


def samples(path):
    out = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = value
    return out


def with_target(key, instance):
    extra = 'instance="%s",job="throttlewatch"' % instance
    if key.endswith("}"):
        name, labels = key[:-1].split("{", 1)
        return "%s{%s%s}" % (name, labels + "," if labels else "", extra)
    return "%s{%s}" % (key, extra)


def compact(values):
    """promtool's notation: a run of n equal values `v` is `vx(n-1)`, n missing ones `_xn`."""
    out, i = [], 0
    while i < len(values):
        j = i
        while j < len(values) and values[j] == values[i]:
            j += 1
        n = j - i
        if n == 1 or values[i] == "stale":
            out += values[i:j]
        elif values[i] == "_":
            out.append("_x%d" % n)
        else:
            out.append("%sx%d" % (values[i], n - 1))
        i = j
    return " ".join(out)


def main(instance, down, paths):
    scrapes = [samples(p) for p in paths]
    keys = []
    for s in scrapes:
        keys += [k for k in s if k not in keys]
    print("      # %s: %d scrapes of a real daemon, then %d failed ones" % (instance, len(scrapes), down))
    up = ["1" if s else "0" for s in scrapes] + ["0"] * down
    print("      - series: '%s'" % with_target("up", instance))
    print("        values: '%s'" % compact(up))
    for key in keys:
        values = [s.get(key, "_") for s in scrapes]
        # Absent from the last scrape: it was already marked stale when it went.
        gone = [i for i in range(1, len(values)) if values[i] == "_" and values[i - 1] != "_"]
        for i in gone:
            values[i] = "stale"
        if down and values[-1] not in ("_", "stale"):
            values.append("stale")
        print("      - series: '%s'" % with_target(key, instance))
        print("        values: '%s'" % compact(values))


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
