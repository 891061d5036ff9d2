#!/usr/bin/env python3
"""Refresh data/ranges/*.txt from their upstream sources and regenerate services.toml.

    data/refresh_ranges.py --fetch [--save DIR] [--only NAME ...] [--dry-run]
    data/refresh_ranges.py --from DIR [--only NAME ...] [--dry-run]

Each range file's upstream is in data/upstreams.toml. --fetch downloads them (needs the
internet; --save DIR also keeps the raw downloads, named as below); --from DIR reads saved
copies instead. Saved copies in DIR:

    AS<n>.json        RIPEstat announced-prefixes answer of one ASN   (kind ripestat)
    <name>.json       Microsoft 365 endpoints answer                  (kind microsoft365)
    <name>.txt        the published list                              (kind text)
    <name>.zip        Meta's WhatsApp zip                             (kind whatsapp_zip)

A source that fails (download error, missing copy, unparseable, fewer than half the prefixes
its file has now) is reported on stderr and its file is left as it is. The others are
rewritten: header (service, licence, notes and format kept; source and counts new), the
prefixes merged and sorted (IPv4 first, strict networks) and the file's `# --- extra:` section
kept, less what the new list covers. Then build_catalogue.py regenerates services.toml.
--dry-run prints what would change per file (added and removed prefixes) and writes nothing.
Exit status 1 if any source failed. Standard library only (Python 3.11+ for tomllib).
"""
import argparse
import datetime
import io
import ipaddress
import json
import pathlib
import re
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
import uuid
import zipfile

HERE = pathlib.Path(__file__).resolve().parent
RANGES = HERE / "ranges"
TIMEOUT_S = 60
MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024
EXTRA_MARK = "# --- extra:"
KEPT_HEADER_KEYS = ("# service:", "# licence:", "# note:", "# format:")


class SourceError(Exception):
    """A source that cannot be used; the message says why."""


class Saved:
    """Reads saved copies from a directory (--from)."""

    def __init__(self, directory):
        self.directory = directory

    def get(self, file_name, url):
        path = self.directory / file_name
        if not path.is_file():
            raise SourceError(f"no saved copy {path} (of {url})")
        return path.read_bytes()

    def describe(self, date):
        return f"read from saved copies in {self.directory.name}/ on {date}"


class Web:
    """Downloads (--fetch), keeping each download in `save` when given."""

    def __init__(self, save):
        self.save = save

    def get(self, file_name, url):
        request = urllib.request.Request(url, headers={"User-Agent": "throttlewatch-refresh_ranges"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
                body = answer.read(MAX_DOWNLOAD_BYTES + 1)
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            raise SourceError(f"{url}: {e}") from e
        if len(body) > MAX_DOWNLOAD_BYTES:
            raise SourceError(f"{url}: larger than {MAX_DOWNLOAD_BYTES} bytes")
        if self.save is not None:
            self.save.mkdir(parents=True, exist_ok=True)
            (self.save / file_name).write_bytes(body)
        return body

    def describe(self, date):
        return f"fetched {date}"


def network(text, where):
    """A strict network from an upstream entry (host bits set are an error of the source)."""
    if not isinstance(text, str):
        raise SourceError(f"{where}: {text!r} is not an address prefix")
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as e:
        raise SourceError(f"{where}: {e}") from e


def covered(net, nets):
    return any(net.version == n.version and net.subnet_of(n) for n in nets)


def json_of(body, where):
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SourceError(f"{where}: not JSON ({e})") from e


def from_ripestat(source, entry, url_template):
    nets = []
    for asn in entry["asns"]:
        url = url_template.format(asn=asn)
        answer = json_of(source.get(f"{asn}.json", url), url)
        try:
            prefixes = answer["data"]["prefixes"]
            nets += [network(p["prefix"], f"{url}: {asn}") for p in prefixes]
        except (KeyError, TypeError) as e:
            raise SourceError(f"{url}: not a RIPEstat announced-prefixes answer (no {e})") from e
    upstream = f"RIPEstat announced prefixes of {' '.join(entry['asns'])} ({url_template.format(asn='ASn')})"
    return nets, upstream


def from_microsoft365(source, name, entry):
    url = f"{entry['url']}?clientrequestid={uuid.uuid4()}"
    answer = json_of(source.get(f"{name}.json", url), entry["url"])
    if not isinstance(answer, list):
        raise SourceError(f"{entry['url']}: not a list of endpoint sets")
    try:
        ips = [ip for e in answer if e.get("serviceArea") == entry["service_area"] for ip in e.get("ips", [])]
    except (AttributeError, TypeError) as e:
        raise SourceError(f"{entry['url']}: not a list of endpoint sets ({e})") from e
    nets = [network(ip, entry["url"]) for ip in ips]
    return nets, f"Microsoft 365 endpoints {entry['url']} serviceArea=={entry['service_area']!r}"


def cidr_lines(text, where):
    lines = [line.strip() for line in text.splitlines()]
    return [network(line, where) for line in lines if line and not line.startswith("#")]


def from_text(source, name, entry):
    body = source.get(f"{name}.txt", entry["url"])
    try:
        text = body.decode()
    except UnicodeDecodeError as e:
        raise SourceError(f"{entry['url']}: not text ({e})") from e
    return cidr_lines(text, entry["url"]), entry["url"]


WHATSAPP_LINK = re.compile(r'href="([^"]+)"[^>]*>\s*WhatsApp server IP addresses and ranges')


def from_whatsapp_zip(source, name, entry):
    page = entry["page"]
    if isinstance(source, Web):
        html = source.get(f"{name}.html", page).decode(errors="replace")
        link = WHATSAPP_LINK.search(html)
        if link is None:
            raise SourceError(f"{page}: no link 'WhatsApp server IP addresses and ranges'")
        url = link.group(1).replace("&amp;", "&")
    else:
        url = f"the zip linked from {page}"
    try:
        archive = zipfile.ZipFile(io.BytesIO(source.get(f"{name}.zip", url)))
        members = [m for m in archive.namelist() if m.lower().endswith(".txt")]
        if not members:
            raise SourceError(f"{url}: no .txt list in the zip")
        nets = []
        for member in members:
            if archive.getinfo(member).file_size > MAX_DOWNLOAD_BYTES:
                raise SourceError(f"{url}: {member} unpacks to more than {MAX_DOWNLOAD_BYTES} bytes")
            nets += cidr_lines(archive.read(member).decode(), f"{url}: {member}")
    except (zipfile.BadZipFile, UnicodeDecodeError, NotImplementedError, RuntimeError, EOFError) as e:
        raise SourceError(f"{url}: not a zip of text lists ({e})") from e
    return nets, f"Meta's 'WhatsApp server IP addresses and ranges' zip linked from {page} ({', '.join(members)})"


def sort_key(net):
    return (net.version, net.network_address, net.prefixlen)


def merged(nets):
    """Deduplicated and merged (covered and adjacent prefixes joined), IPv4 first."""
    v4 = ipaddress.collapse_addresses(n for n in nets if n.version == 4)
    v6 = ipaddress.collapse_addresses(n for n in nets if n.version == 6)
    return sorted([*v4, *v6], key=sort_key)


class RangeFile:
    """A range file as it is: header lines, main prefixes, the extra section."""

    def __init__(self, path):
        self.header, self.main, self.extra_mark, self.extra = [], [], None, []
        for line in path.read_text().splitlines():
            line = line.strip()
            if line.startswith(EXTRA_MARK):
                self.extra_mark = line
            elif line.startswith("#"):
                if self.main or self.extra_mark is not None:
                    sys.exit(f"{path}: a comment among the prefixes ({line}): not kept by a refresh, move it to the header")
                self.header.append(line)
            elif line and self.extra_mark is None:
                self.main.append(ipaddress.ip_network(line, strict=True))
            elif line:
                self.extra.append(ipaddress.ip_network(line, strict=True))

    def prefixes(self):
        return set(self.main) | set(self.extra)


def counts(nets):
    v4 = sum(1 for n in nets if n.version == 4)
    return f"ipv4={v4} ipv6={len(nets) - v4}"


def render(old, nets, extra, upstream, retrieved, hand_added):
    kept = [line for line in old.header if line.startswith(KEPT_HEADER_KEYS)]
    service = [line for line in kept if line.startswith("# service:")]
    rest = [line for line in kept if not line.startswith(("# service:", "# licence:"))]
    source = f"# source: {upstream}, {retrieved} by data/refresh_ranges.py"
    if hand_added:
        source += f"; plus hand-added {' '.join(hand_added)}"
    licence = "# licence: the prefixes are factual routing/ownership data published by the source above"
    if extra:
        licence += "; the extra section was read from nDPI (LGPL-3.0-or-later)"
    count = f"# counts: {counts(nets)}" + (f" (+{len(extra)} extra, see below)" if extra else "")
    lines = service + [source, licence, count] + rest + [str(n) for n in nets]
    if extra:
        lines += [old.extra_mark] + [str(n) for n in extra]
    return "\n".join(lines) + "\n"


def refresh(name, entry, ripestat_url, source, retrieved, dry_run):
    """Rewrite ranges/<name>.txt from its source; False (and a message) if it failed."""
    path = RANGES / f"{name}.txt"
    old = RangeFile(path)
    kind = entry["kind"]
    try:
        if kind == "ripestat":
            nets, upstream = from_ripestat(source, entry, ripestat_url)
        elif kind == "microsoft365":
            nets, upstream = from_microsoft365(source, name, entry)
        elif kind == "text":
            nets, upstream = from_text(source, name, entry)
        elif kind == "whatsapp_zip":
            nets, upstream = from_whatsapp_zip(source, name, entry)
        else:
            raise SourceError(f"unknown kind {kind!r} in upstreams.toml")
        fresh = merged(nets)
        if len(fresh) * 2 < len(old.main) or not fresh:
            raise SourceError(
                f"only {len(fresh)} prefixes where {path.name} has {len(old.main)}: suspiciously few, not used"
            )
    except SourceError as e:
        print(f"{name}: FAILED, {path.name} left as it is: {e}", file=sys.stderr)
        return False
    hand_added = [str(network(p, "upstreams.toml")) for p in entry.get("hand_added", [])]
    nets = merged(fresh + [ipaddress.ip_network(p) for p in hand_added])
    extra = [x for x in old.extra if not covered(x, nets)]
    new = set(nets) | set(extra)
    added = sorted(new - old.prefixes(), key=sort_key)
    removed = sorted((n for n in old.prefixes() - new if not covered(n, new)), key=sort_key)
    print(f"{name}: {counts(nets)} (+{len(extra)} extra); {len(added)} added, {len(removed)} removed")
    if dry_run:
        print("".join(f"  + {n}\n" for n in added) + "".join(f"  - {n}\n" for n in removed), end="")
        return True
    path.write_text(render(old, nets, extra, upstream, retrieved, hand_added))
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--fetch", action="store_true", help="download every upstream")
    how.add_argument("--from", dest="saved", type=pathlib.Path, metavar="DIR", help="read saved copies")
    parser.add_argument("--save", type=pathlib.Path, metavar="DIR", help="with --fetch: keep the downloads")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="refresh only these range files")
    parser.add_argument("--dry-run", action="store_true", help="print the changes, write nothing")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    if args.save is not None and not args.fetch:
        parser.error("--save goes with --fetch")
    if args.saved is not None and not args.saved.is_dir():
        sys.exit(f"{args.saved}: no such directory of saved copies")

    table = tomllib.loads((HERE / "upstreams.toml").read_text())
    upstreams = {name: entry for name, entry in table.items() if isinstance(entry, dict)}
    files = sorted(p.stem for p in RANGES.glob("*.txt"))
    unlisted = set(files) ^ set(upstreams)
    if unlisted:
        sys.exit(f"upstreams.toml and ranges/ disagree on: {', '.join(sorted(unlisted))}")
    names = args.only or files
    unknown = [n for n in names if n not in upstreams]
    if unknown:
        sys.exit(f"no range file {', '.join(unknown)} (there are: {', '.join(files)})")

    source = Web(args.save) if args.fetch else Saved(args.saved)
    retrieved = source.describe(datetime.datetime.now(datetime.timezone.utc).date().isoformat())
    failed = []
    for name in names:
        entry = upstreams[name]
        if entry["kind"] == "manual":
            print(f"{name}: kept as it is (not refreshable: {entry['why']})")
        elif not refresh(name, entry, table["ripestat_url"], source, retrieved, args.dry_run):
            failed.append(name)
    if not args.dry_run:
        subprocess.run([sys.executable, str(HERE / "build_catalogue.py")], check=True)
    if failed:
        sys.exit(f"not refreshed (see above): {', '.join(failed)}")


if __name__ == "__main__":
    main()
