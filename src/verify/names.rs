//! The host and user names a rebuild is known to have had, for the comparison to recognise
//! them ([`crate::compare::Names`]): this machine's host name, the sandbox's
//! ([`crate::sandbox::bwrap::HOSTNAME`]), and the user the build ran as (by `USER`,
//! `LOGNAME` and the password database entry of the effective uid). Each is read without
//! failing: a name that cannot be learnt is left out.

use crate::compare::Names;

/// The names this process, and so its rebuilds, run under.
pub(super) fn rebuild_names() -> Names {
    let mut names = Names::default();
    let add = |list: &mut Vec<String>, name: Option<String>| {
        if let Some(n) = name.map(|n| n.trim().to_owned()) {
            if !n.is_empty() && !list.contains(&n) {
                list.push(n);
            }
        }
    };
    add(
        &mut names.hosts,
        std::fs::read_to_string("/proc/sys/kernel/hostname").ok(),
    );
    add(
        &mut names.hosts,
        Some(crate::sandbox::bwrap::HOSTNAME.to_owned()),
    );
    for var in ["USER", "LOGNAME"] {
        add(&mut names.users, std::env::var(var).ok());
    }
    add(&mut names.users, passwd_name());
    names
}

/// The name of the effective uid in `/etc/passwd` (bounded read).
fn passwd_name() -> Option<String> {
    use std::io::Read as _;
    // SAFETY: geteuid cannot fail and touches no memory.
    let uid = unsafe { libc::geteuid() }.to_string();
    let mut text = String::new();
    std::fs::File::open("/etc/passwd")
        .ok()?
        .take(1 << 20)
        .read_to_string(&mut text)
        .ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandbox_host_name_is_always_known() {
        let names = rebuild_names();
        assert!(names.hosts.iter().any(|h| h == "reprove"));
        assert!(names.hosts.iter().all(|h| !h.is_empty() && h.trim() == h));
    }
}
