//! Dropping root once the ports are bound (`--user NAME`): the account is
//! looked up before anything is bound, so a wrong name fails early, and the
//! switch is checked (root cannot be regained) before anything is served.

use anyhow::{Context, Result, bail};
use nix::unistd::{Gid, Uid, User, geteuid, setgid, setgroups, setuid};

use crate::clean::clean;

/// The account to run as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Its name.
    pub name: String,
    /// Its user ID.
    pub uid: u32,
    /// Its primary group ID.
    pub gid: u32,
}

/// Looks up `name` (a user name or a numeric UID); refuses when this
/// process is not root, since only root can switch user.
pub fn lookup(name: &str) -> Result<Account> {
    let shown = clean(name);
    if !geteuid().is_root() {
        bail!(
            "--user {shown} needs portprobe listen to start as root (it binds the ports, then becomes {shown}); leave --user out to run as yourself"
        );
    }
    let user = match name.parse::<u32>() {
        Ok(uid) => User::from_uid(Uid::from_raw(uid)),
        Err(_) => User::from_name(name),
    }
    .with_context(|| format!("cannot look up the user {shown}"))?;
    let Some(user) = user else {
        bail!(
            "--user {shown}: no such user on this host (give a name from /etc/passwd, e.g. nobody)"
        );
    };
    Ok(Account {
        name: user.name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
    })
}

/// Becomes `account`: no supplementary groups, its group, its user.
pub fn become_user(account: &Account) -> Result<()> {
    let gid = Gid::from_raw(account.gid);
    let uid = Uid::from_raw(account.uid);
    let fail = |what: &str| {
        format!(
            "cannot drop privileges to {} ({what})",
            clean(&account.name)
        )
    };
    setgroups(&[gid]).with_context(|| fail("setgroups"))?;
    setgid(gid).with_context(|| fail("setgid"))?;
    setuid(uid).with_context(|| fail("setuid"))?;
    if account.uid != 0 && setuid(Uid::from_raw(0)).is_ok() {
        bail!("{}: root could be regained", fail("check"));
    }
    Ok(())
}
