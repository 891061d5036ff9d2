//! The daemon's dealings with the system beyond packets: giving up root once the captures are
//! open, checking first that the user it becomes can write its outputs, and noticing flow
//! offloading, which makes forwarded packets bypass the CPU and leaves the capture blind to
//! them.
//!
//! Giving up root (`user`): no supplementary groups, the user's uid and primary gid, an empty
//! capability bounding set and `no_new_privs` (nothing it could execute gains anything). It
//! keeps one capability, CAP_NET_RAW, in its permitted set only (not effective): the capture
//! thread raises it for the moment it reopens an interface that came back ([`NetRaw`]) —
//! the same capability the systemd unit grants it for its whole life.

use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// CAP_NET_RAW (linux/capability.h): open packet sockets.
const CAP_NET_RAW: u32 = 13;
/// _LINUX_CAPABILITY_VERSION_3: 64-bit sets as two 32-bit words.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// The user the daemon switches to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl Account {
    /// Look `user` up in the password database.
    pub fn find(user: &str) -> Result<Account, String> {
        let name = CString::new(user).map_err(|_| format!("user {user:?}: not a user name"))?;
        // SAFETY: getpwnam reads a NUL-terminated name and returns a pointer into static
        // storage (or null), read at once here before any other call could reuse it.
        #[allow(unsafe_code)]
        let ids = unsafe {
            let pw = libc::getpwnam(name.as_ptr());
            (!pw.is_null()).then(|| ((*pw).pw_uid, (*pw).pw_gid))
        };
        let (uid, gid) = ids.ok_or_else(|| format!("user {user:?}: no such user"))?;
        Ok(Account { name: user.to_string(), uid, gid })
    }

    fn describe(&self) -> String {
        format!("user {:?} (uid {}, gid {})", self.name, self.uid, self.gid)
    }
}

/// Whether the mode bits of `meta` grant `want` (a combination of 2 = write, 1 = search or
/// execute, 4 = read, in the owner's position shifted down) to `account`. Root passes.
fn granted(meta: &std::fs::Metadata, account: &Account, want: u32) -> bool {
    let mode = meta.mode();
    let bits = if account.uid == 0 {
        return true;
    } else if meta.uid() == account.uid {
        mode >> 6
    } else if meta.gid() == account.gid {
        mode >> 3
    } else {
        mode
    };
    bits & want == want
}

/// Whether this process may access `path` for `mode` (libc `W_OK`, `X_OK`), as it is now.
fn accessible(path: &Path, mode: libc::c_int) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else { return false };
    // SAFETY: a valid NUL-terminated path; faccessat only reads it.
    #[allow(unsafe_code)]
    let result = unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), mode, libc::AT_EACCESS) };
    result == 0
}

/// Check that `account` (or, with `None`, this process) can keep writing the output `key`
/// at `path`: create it and replace it (its folder must be writable and searchable, and
/// each folder above it searchable), and append to it if it exists. An existing file it
/// cannot write, in a folder where it may replace files anyway (writable, not sticky), is
/// handed over to it (chown, as root). The error names the key, the path and what is
/// missing. (Mode bits only, for another user: ACLs are not read.)
pub fn check_writable(key: &str, path: &Path, account: Option<&Account>) -> Result<(), String> {
    let who = account.map_or_else(|| "this process".to_string(), Account::describe);
    let fail =
        |what: String| Err(format!("{key} = {:?}: {who} {what}", path.display().to_string()));
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::env::current_dir().unwrap_or_else(|_| ".".into()),
    };
    let folder = std::fs::canonicalize(&folder).unwrap_or(folder);
    let allowed = |p: &Path, want: u32| match account {
        Some(a) => std::fs::metadata(p).is_ok_and(|m| granted(&m, a, want)),
        None => accessible(p, want as libc::c_int),
    };
    let Ok(meta) = std::fs::metadata(&folder) else {
        return fail(format!("cannot use it: the folder {} does not exist", folder.display()));
    };
    if !meta.is_dir() {
        return fail(format!("cannot use it: {} is not a folder", folder.display()));
    }
    for above in folder.ancestors().skip(1) {
        if !allowed(above, 1) {
            return fail(format!("cannot reach it: it may not enter {}", above.display()));
        }
    }
    if !allowed(&folder, 2 | 1) {
        let (owner, mode) = (meta.uid(), meta.mode() & 0o7777);
        return fail(format!(
            "cannot create or replace files in {} (owner uid {owner}, mode {mode:04o})",
            folder.display()
        ));
    }
    if let Ok(file) = std::fs::metadata(path)
        && !allowed(path, 2)
    {
        // The user may replace any file in this folder (it is writable and not sticky), so
        // handing it this one grants nothing new: e.g. the events file an earlier version
        // created as root before switching users.
        let sticky = meta.mode() & 0o1000 != 0;
        if let Some(a) = account
            && !sticky
            && std::os::unix::fs::chown(path, Some(a.uid), Some(a.gid)).is_ok()
        {
            super::log(&format!("{key}: {} handed over to {}", path.display(), a.describe()));
            return Ok(());
        }
        let (owner, mode) = (file.uid(), file.mode() & 0o7777);
        return fail(format!("cannot write it (owner uid {owner}, mode {mode:04o})"));
    }
    Ok(())
}

/// The kernel's capability sets of this thread, as `capget`/`capset` exchange them.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

fn capabilities() -> Option<[CapData; 2]> {
    let mut header = CapHeader { version: CAPABILITY_VERSION_3, pid: 0 };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and data are valid for the kernel to read and write (version 3: two
    // data structs).
    #[allow(unsafe_code)]
    let result = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    (result == 0).then_some(data)
}

fn set_capabilities(data: &[CapData; 2]) -> bool {
    let mut header = CapHeader { version: CAPABILITY_VERSION_3, pid: 0 };
    // SAFETY: as in `capabilities`; the kernel only reads `data`.
    #[allow(unsafe_code)]
    let result = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    result == 0
}

/// CAP_NET_RAW in the calling thread's effective set while this lives, when it is permitted
/// but not effective (after [`drop_privileges`]); otherwise nothing changes.
pub struct NetRaw {
    restore: Option<[CapData; 2]>,
}

impl NetRaw {
    pub fn raise() -> NetRaw {
        let bit = 1 << CAP_NET_RAW;
        let restore =
            capabilities().filter(|c| c[0].permitted & bit != 0 && c[0].effective & bit == 0);
        if let Some(before) = restore {
            let mut raised = before;
            raised[0].effective |= bit;
            if !set_capabilities(&raised) {
                return NetRaw { restore: None };
            }
        }
        NetRaw { restore }
    }
}

impl Drop for NetRaw {
    fn drop(&mut self) {
        if let Some(before) = &self.restore {
            set_capabilities(before);
        }
    }
}

/// Switch the whole process to `account` and its primary group, with no supplementary
/// groups, an empty bounding set, `no_new_privs`, and CAP_NET_RAW permitted only (see the
/// module's notes). Must run before other threads start. Checks that root cannot be regained.
pub fn drop_privileges(account: &Account) -> Result<(), String> {
    let Account { uid, gid, .. } = *account;
    // SAFETY: prctl, setgroups and set*id take plain integers (setgroups a null list of
    // length 0). No other thread runs yet (see above).
    #[allow(unsafe_code)]
    let result = unsafe {
        // Every capability out of the bounding set (this needs CAP_SETPCAP: before setuid).
        // The kernel answers EINVAL past its last capability.
        let mut bounding = Ok(());
        for cap in 0..64 {
            if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 {
                if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
                    bounding = Err("prctl(PR_CAPBSET_DROP)");
                }
                break;
            }
        }
        bounding
            .and_then(|()| {
                if libc::setgroups(0, std::ptr::null()) != 0 {
                    Err("setgroups")
                } else if libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 {
                    Err("prctl(PR_SET_KEEPCAPS)")
                } else if libc::setgid(gid) != 0 {
                    Err("setgid")
                } else if libc::setuid(uid) != 0 {
                    Err("setuid")
                } else {
                    Ok(())
                }
            })
            .and_then(|()| {
                let bit = 1 << CAP_NET_RAW;
                let keep =
                    [CapData { effective: 0, permitted: bit, inheritable: 0 }, CapData::default()];
                if !set_capabilities(&keep) {
                    Err("capset")
                } else if libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0 {
                    Err("prctl(PR_SET_KEEPCAPS)")
                } else if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    Err("prctl(PR_SET_NO_NEW_PRIVS)")
                } else if uid != 0 && libc::setuid(0) == 0 {
                    Err("regaining root after setuid")
                } else {
                    Ok(())
                }
            })
    };
    result.map_err(|call| {
        format!(
            "cannot switch to {}: {call} failed: {}",
            account.describe(),
            std::io::Error::last_os_error()
        )
    })
}

/// Whether an OpenWrt firewall configuration turns on software or hardware flow offloading.
fn offload_in_firewall(uci: &str) -> bool {
    uci.lines().any(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        matches!(
            words[..],
            ["option", "flow_offloading" | "flow_offloading_hw", value]
                if matches!(value.trim_matches(['\'', '"']), "1" | "yes" | "on" | "true")
        )
    })
}

/// Offloaded connections listed by conntrack.
fn offloaded_connections(conntrack: &str) -> usize {
    conntrack.lines().filter(|l| l.contains("[OFFLOAD]") || l.contains("[HW_OFFLOAD]")).count()
}

/// A warning when flow offloading may hide forwarded traffic from the capture: OpenWrt's
/// firewall option, or offloaded entries in conntrack's table.
pub fn offload_warning(firewall: &Path, conntrack: &Path) -> Option<String> {
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let configured = offload_in_firewall(&read(firewall));
    let offloaded = offloaded_connections(&read(conntrack));
    match (configured, offloaded) {
        (false, 0) => None,
        (true, n) => Some(format!(
            "flow offloading is on ({}: flow_offloading): forwarded packets of established \
             connections bypass the CPU and the capture does not see them{}; turn it off \
             (uci set firewall.@defaults[0].flow_offloading=0) for throttlewatch to measure",
            firewall.display(),
            if n > 0 { format!(" ({n} connections offloaded now)") } else { String::new() }
        )),
        (false, n) => Some(format!(
            "{n} connections are offloaded ({}): their packets bypass the CPU and the capture \
             does not see them",
            conntrack.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offloading_is_noticed() {
        let on = "config defaults\n\toption syn_flood '1'\n\toption flow_offloading '1'\n";
        let hw = "config defaults\n\toption flow_offloading_hw \"1\"\n";
        let off = "config defaults\n\toption flow_offloading '0'\n";
        assert!(offload_in_firewall(on) && offload_in_firewall(hw));
        assert!(!offload_in_firewall(off) && !offload_in_firewall(""));
        let ct =
            "ipv4 2 tcp 6 ESTABLISHED src=1.2.3.4 [OFFLOAD] mark=0\nipv4 2 udp 17 src=5.6.7.8\n";
        assert_eq!(offloaded_connections(ct), 1);

        let dir = std::env::temp_dir().join(format!("tw-offload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (fw, ctp) = (dir.join("firewall"), dir.join("nf_conntrack"));
        std::fs::write(&fw, off).unwrap();
        std::fs::write(&ctp, "").unwrap();
        assert_eq!(offload_warning(&fw, &ctp), None);
        std::fs::write(&fw, on).unwrap();
        assert!(offload_warning(&fw, &ctp).unwrap().contains("flow offloading is on"));
        std::fs::write(&fw, off).unwrap();
        std::fs::write(&ctp, ct).unwrap();
        assert!(offload_warning(&fw, &ctp).unwrap().starts_with("1 connections are offloaded"));
        assert_eq!(offload_warning(&dir.join("absent"), &dir.join("absent")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unknown_user_is_named() {
        let err = Account::find("no-such-user-tw").unwrap_err();
        assert!(err.contains("\"no-such-user-tw\": no such user"), "{err}");
        assert!(Account::find("a\0b").unwrap_err().contains("not a user name"));
        assert_eq!(Account::find("root").unwrap().uid, 0);
    }

    /// What the user the daemon becomes may write, from the mode bits.
    #[test]
    fn writability_for_another_user_names_the_path() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("tw-writable-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let meta = std::fs::metadata(&dir).unwrap();
        let owner = Account { name: "owner".into(), uid: meta.uid(), gid: meta.gid() };
        let other = Account { name: "other".into(), uid: 4_000_000_000, gid: 4_000_000_000 };
        let path = dir.join("status.json");
        let set_mode = |p: &Path, mode| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        set_mode(&dir, 0o755);
        assert_eq!(check_writable("status", &path, Some(&owner)), Ok(()));
        let err = check_writable("status", &path, Some(&other)).unwrap_err();
        assert!(
            err.starts_with(&format!("status = \"{}\": user \"other\"", path.display())),
            "{err}"
        );
        assert!(
            err.contains("cannot create or replace files in") && err.contains("mode 0755"),
            "{err}"
        );
        set_mode(&dir, 0o777);
        assert_eq!(check_writable("status", &path, Some(&other)), Ok(()));
        std::fs::write(&path, "{}").unwrap();
        set_mode(&path, 0o644);
        // In a sticky folder the user could not replace the file: refused.
        set_mode(&dir, 0o1777);
        let err = check_writable("status", &path, Some(&other)).unwrap_err();
        assert!(err.contains("cannot write it") && err.contains("mode 0644"), "{err}");
        // Otherwise it is handed over (as root; else refused the same way).
        set_mode(&dir, 0o777);
        // /proc/self belongs to the process's effective user.
        let is_root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
        match check_writable("status", &path, Some(&other)) {
            Ok(()) => {
                assert!(is_root);
                assert_eq!(std::fs::metadata(&path).unwrap().uid(), other.uid);
            }
            Err(err) => assert!(!is_root && err.contains("cannot write it"), "{err}"),
        }
        let missing = dir.join("no/such/status.json");
        let err = check_writable("status", &missing, Some(&owner)).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
        // This process, as it is.
        assert_eq!(check_writable("status", &path, None), Ok(()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
