//! The daemon's dealings with the system beyond packets: giving up root once the captures are
//! open, and noticing flow offloading, which makes forwarded packets bypass the CPU and leaves
//! the capture blind to them.

use std::ffi::CString;
use std::path::Path;

/// Switch the whole process to `user` and its primary group, with no supplementary groups.
/// Must run before other threads start. Checks that root cannot be regained.
pub fn drop_privileges(user: &str) -> Result<(), String> {
    let name = CString::new(user).map_err(|_| format!("user {user:?}: not a user name"))?;
    // SAFETY: getpwnam reads a NUL-terminated name and returns a pointer into static storage
    // (or null), read at once here before any other call could reuse it; set*id take plain
    // integers. No other thread runs yet (see above).
    #[allow(unsafe_code)]
    let (uid, gid, result) = unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        if pw.is_null() {
            return Err(format!("user {user:?}: no such user"));
        }
        let (uid, gid) = ((*pw).pw_uid, (*pw).pw_gid);
        let result = if libc::setgroups(0, std::ptr::null()) != 0 {
            Err("setgroups")
        } else if libc::setgid(gid) != 0 {
            Err("setgid")
        } else if libc::setuid(uid) != 0 {
            Err("setuid")
        } else if uid != 0 && libc::setuid(0) == 0 {
            Err("regaining root after setuid")
        } else {
            Ok(())
        };
        (uid, gid, result)
    };
    result.map_err(|call| {
        format!(
            "cannot switch to user {user:?} (uid {uid}, gid {gid}): {call} failed: {}",
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
    }

    #[test]
    fn an_unknown_user_is_named() {
        let err = drop_privileges("no-such-user-tw").unwrap_err();
        assert!(err.contains("\"no-such-user-tw\": no such user"), "{err}");
        assert!(drop_privileges("a\0b").unwrap_err().contains("not a user name"));
    }
}
