//! HTTP Basic authentication of every request against the bcrypt hashes of
//! the web configuration's `basic_auth_users`. bcrypt is slow on purpose,
//! so what it costs is bounded: a hash may cost at most [`MAX_COST`], one
//! check runs at a time (on a blocking thread, so one core at most), a
//! result is remembered (keyed by a keyed hash of name and password, never
//! the password), and each source address may fail only so often before it
//! gets 429 without a check. An unknown user costs the same bcrypt check
//! as a known one, and names are compared in constant time, so neither the
//! answer nor its timing says which names exist.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::{ConditionallySelectable, ConstantTimeEq};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// The highest bcrypt cost a hash may have: one check at cost 12 takes
/// about a quarter of a second of a core, at 13 twice that.
pub const MAX_COST: u32 = 12;
/// The lowest cost bcrypt knows.
const MIN_COST: u32 = 4;
/// bcrypt checks running at once: one core at most, whatever arrives.
const CHECKS_AT_ONCE: usize = 1;
/// How long a request waits for its turn at a check before 503.
const CHECK_WAIT: Duration = Duration::from_secs(5);
/// Good name and password pairs remembered (those of the scrapers).
const GOOD_REMEMBERED: usize = 64;
/// Bad pairs remembered, so a scraper with a wrong password costs one
/// check, not one per scrape.
const BAD_REMEMBERED: usize = 1024;
/// Failed logins a source may make at once ...
const FAILURE_BURST: f64 = 10.0;
/// ... and one more each this long.
const FAILURE_REFILL: Duration = Duration::from_secs(6);
/// Sources whose failures are counted; past this the rest share one count.
const MAX_SOURCES: usize = 4096;
/// The longest password bcrypt reads all of.
const MAX_PASSWORD: usize = 72;
/// The challenge sent with 401.
const CHALLENGE: &str = "Basic realm=\"portprobe\"";

type Key = [u8; 32];

/// Checks that `hash` is a bcrypt hash portprobe will verify: the error
/// says what is wrong and what would be right.
pub fn check_hash(hash: &str) -> Result<(), String> {
    let parts: bcrypt::HashParts = hash.parse().map_err(|e| {
        format!(
            "not a bcrypt hash ({e}); make one with `htpasswd -nBC 10 USER` or Python's bcrypt.hashpw"
        )
    })?;
    let cost = parts.get_cost();
    if cost < MIN_COST {
        return Err(format!(
            "bcrypt cost {cost} is below {MIN_COST}, which no bcrypt check accepts; hash the password again at cost 10 to {MAX_COST}"
        ));
    }
    if cost > MAX_COST {
        return Err(format!(
            "bcrypt cost {cost} is above {MAX_COST}, and each check would hold a core for a second or more; hash the password again at cost 10 to {MAX_COST}"
        ));
    }
    Ok(())
}

/// Whether a request may pass, or how it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The name and password match.
    Pass,
    /// No credentials, or wrong ones: 401 with the challenge.
    Unauthorized,
    /// This source failed too often: 429, retry after this long.
    TooMany(Duration),
    /// Other checks held the turn too long: 503.
    Busy,
}

/// The users and what the checks remember.
#[derive(Debug)]
pub struct Users {
    /// Each user's name as a keyed hash, and its bcrypt hash.
    users: Vec<(Key, String)>,
    /// The key of those hashes, fresh for each run.
    key: Key,
    checks: Semaphore,
    remembered: Mutex<Remembered>,
    failures: Mutex<Failures>,
    #[cfg(test)]
    counts: Mutex<(usize, usize, usize)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Users {
    /// The users of `users` (name to bcrypt hash, each checked with
    /// [`check_hash`]); `None` when there are none.
    pub fn new<'a>(users: impl IntoIterator<Item = (&'a String, &'a String)>) -> Option<Users> {
        let mut key = [0u8; 32];
        rand::fill(&mut key);
        let mut u = Users {
            users: Vec::new(),
            key,
            checks: Semaphore::new(CHECKS_AT_ONCE),
            remembered: Mutex::default(),
            failures: Mutex::default(),
            #[cfg(test)]
            counts: Mutex::default(),
        };
        u.users = users
            .into_iter()
            .map(|(name, hash)| (u.mac(&[name.as_bytes()]), hash.clone()))
            .collect();
        (!u.users.is_empty()).then_some(u)
    }

    fn mac(&self, parts: &[&[u8]]) -> Key {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        for p in parts {
            // Lengths first, so that no two splits of the same bytes meet.
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    /// The bcrypt hash to check a password against for `name`, and whether
    /// the name is a user's: an unknown name gets the first user's hash (and
    /// fails), so that it costs the same. Every name is compared, in
    /// constant time.
    fn hash_for(&self, name: &str) -> (&str, bool) {
        let wanted = self.mac(&[name.as_bytes()]);
        let mut index = 0u64;
        let mut found = subtle::Choice::from(0);
        for (i, (user, _)) in self.users.iter().enumerate() {
            let same = user.ct_eq(&wanted);
            index = u64::conditional_select(&index, &(i as u64), same);
            found |= same;
        }
        let i = usize::try_from(index).unwrap_or(0);
        (&self.users[i].1, found.into())
    }

    /// Checks the `Authorization` header of a request from `source`.
    pub async fn check(self: &Arc<Self>, source: IpAddr, headers: &HeaderMap) -> Verdict {
        let Some((name, password)) = credentials(headers) else {
            return Verdict::Unauthorized;
        };
        let pair = self.mac(&[name.as_bytes(), password.as_bytes()]);
        let source = source_key(source);
        if lock(&self.remembered).good.contains(&pair) {
            return Verdict::Pass;
        }
        // A try is taken before the check and given back if it passes, so
        // that many requests at once from one source get no more checks
        // than its tries.
        if let Err(wait) = lock(&self.failures).take(source, Instant::now()) {
            return Verdict::TooMany(wait);
        }
        if lock(&self.remembered).bad.contains(&pair) {
            return Verdict::Unauthorized;
        }
        let verdict = match self.verify(name, password).await {
            None => Verdict::Busy,
            Some(good) => {
                lock(&self.remembered).remember(pair, good);
                if good {
                    Verdict::Pass
                } else {
                    Verdict::Unauthorized
                }
            }
        };
        if verdict != Verdict::Unauthorized {
            lock(&self.failures).give_back(source, Instant::now());
        }
        verdict
    }

    /// Runs one bcrypt check in turn: `None` when the turn did not come in
    /// time.
    async fn verify(self: &Arc<Self>, name: String, password: String) -> Option<bool> {
        let Ok(Ok(_permit)) = tokio::time::timeout(CHECK_WAIT, self.checks.acquire()).await else {
            return None;
        };
        let users = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            #[cfg(test)]
            let _counted = users.counting();
            let (hash, known) = users.hash_for(&name);
            // A password over bcrypt's 72 bytes fails rather than matching
            // on its first 72.
            let matches = password.len() <= MAX_PASSWORD
                && bcrypt::verify(password.as_bytes(), hash).unwrap_or(false);
            matches && known
        })
        .await
        .ok()
    }

    /// Checks run so far.
    #[cfg(test)]
    fn checked(&self) -> usize {
        self.counts.lock().unwrap().1
    }

    /// Counts a check while it runs: (running now, run so far, most at once).
    #[cfg(test)]
    fn counting(&self) -> impl Drop + '_ {
        struct Running<'a>(&'a Mutex<(usize, usize, usize)>);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                self.0.lock().unwrap().0 -= 1;
            }
        }
        let mut c = self.counts.lock().unwrap();
        c.0 += 1;
        c.1 += 1;
        c.2 = c.2.max(c.0);
        drop(c);
        Running(&self.counts)
    }
}

/// The name and password of a `Basic` `Authorization` header.
fn credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (name, password) = decoded.split_once(':')?;
    Some((name.to_string(), password.to_string()))
}

/// What failures are counted by: the address, or its /64 for IPv6 (one
/// host commonly holds a whole /64).
fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// The pairs checked, good and bad, each list bounded (oldest forgotten).
#[derive(Debug, Default)]
struct Remembered {
    good: HashSet<Key>,
    good_order: VecDeque<Key>,
    bad: HashSet<Key>,
    bad_order: VecDeque<Key>,
}

impl Remembered {
    fn remember(&mut self, pair: Key, good: bool) {
        let (set, order, most) = if good {
            (&mut self.good, &mut self.good_order, GOOD_REMEMBERED)
        } else {
            (&mut self.bad, &mut self.bad_order, BAD_REMEMBERED)
        };
        if !set.insert(pair) {
            return;
        }
        order.push_back(pair);
        if order.len() > most
            && let Some(old) = order.pop_front()
        {
            set.remove(&old);
        }
    }
}

/// Failed logins by source: a bucket of [`FAILURE_BURST`] refilled one
/// every [`FAILURE_REFILL`].
#[derive(Debug, Default)]
struct Failures {
    sources: HashMap<IpAddr, Bucket>,
    /// Shared by the sources beyond [`MAX_SOURCES`].
    rest: Option<Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    left: f64,
    at: Instant,
}

impl Bucket {
    fn full(now: Instant) -> Bucket {
        Bucket {
            left: FAILURE_BURST,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let gained =
            now.saturating_duration_since(self.at).as_secs_f64() / FAILURE_REFILL.as_secs_f64();
        self.left = (self.left + gained).min(FAILURE_BURST);
        self.at = now;
    }
}

impl Failures {
    fn bucket(&mut self, source: IpAddr, now: Instant) -> &mut Bucket {
        if !self.sources.contains_key(&source) && self.sources.len() >= MAX_SOURCES {
            // Forget the sources that have earned back every failure.
            self.sources.retain(|_, b| {
                b.refill(now);
                b.left < FAILURE_BURST
            });
        }
        if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(&source) {
            return self.rest.get_or_insert_with(|| Bucket::full(now));
        }
        self.sources
            .entry(source)
            .or_insert_with(|| Bucket::full(now))
    }

    /// Takes one of `source`'s tries, or says how long it must wait for one.
    fn take(&mut self, source: IpAddr, now: Instant) -> Result<(), Duration> {
        let b = self.bucket(source, now);
        b.refill(now);
        if b.left < 1.0 {
            return Err(FAILURE_REFILL.mul_f64(1.0 - b.left));
        }
        b.left -= 1.0;
        Ok(())
    }

    /// Gives back a try that did not fail.
    fn give_back(&mut self, source: IpAddr, now: Instant) {
        let b = self.bucket(source, now);
        b.refill(now);
        b.left = (b.left + 1.0).min(FAILURE_BURST);
    }
}

/// The middleware in front of every route: passes a request whose
/// credentials match, answers any other itself.
pub async fn require(
    State(users): State<Arc<Users>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    match users.check(peer.ip(), request.headers()).await {
        Verdict::Pass => next.run(request).await,
        Verdict::Unauthorized => (
            StatusCode::UNAUTHORIZED,
            [
                (
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(CHALLENGE),
                ),
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                ),
            ],
            "unauthorized: this exporter needs a user name and password (HTTP Basic)\n",
        )
            .into_response(),
        Verdict::TooMany(wait) => (
            StatusCode::TOO_MANY_REQUESTS,
            [
                (
                    header::RETRY_AFTER,
                    HeaderValue::from(wait.as_secs().max(1)),
                ),
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                ),
            ],
            "too many failed logins from this address; wait and try again\n",
        )
            .into_response(),
        Verdict::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            "too many logins being checked at once; try again\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(pairs: &[(&str, &str)]) -> Arc<Users> {
        users_at(4, pairs)
    }

    fn users_at(cost: u32, pairs: &[(&str, &str)]) -> Arc<Users> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(u, p)| (u.to_string(), bcrypt::hash(p, cost).unwrap()))
            .collect();
        Arc::new(Users::new(pairs.iter().map(|(a, b)| (a, b))).unwrap())
    }

    fn basic(user: &str, password: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        h.insert(header::AUTHORIZATION, format!("Basic {v}").parse().unwrap());
        h
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn hashes_are_checked_at_load() {
        assert!(check_hash(&bcrypt::hash("x", 4).unwrap()).is_ok());
        assert!(check_hash("$2y$10$notahash").is_err());
        assert!(check_hash("plain").unwrap_err().contains("htpasswd"));
        let costly = bcrypt::hash("x", 4).unwrap().replacen("$04$", "$13$", 1);
        assert!(check_hash(&costly).unwrap_err().contains("cost 13"));
        let cheap = bcrypt::hash("x", 4).unwrap().replacen("$04$", "$03$", 1);
        assert!(check_hash(&cheap).unwrap_err().contains("cost 3"));
        assert!(Users::new(std::iter::empty()).is_none());
    }

    #[tokio::test]
    async fn the_right_pair_passes_and_is_checked_once() {
        let u = users(&[("alice", "s3cret"), ("bob", "hunter2")]);
        assert_eq!(u.check(A, &basic("bob", "hunter2")).await, Verdict::Pass);
        for _ in 0..20 {
            assert_eq!(u.check(A, &basic("bob", "hunter2")).await, Verdict::Pass);
        }
        assert_eq!(u.checked(), 1);
        assert_eq!(u.check(A, &basic("alice", "s3cret")).await, Verdict::Pass);
        // Another user's password, and a user that does not exist with a
        // password that is someone's, fail.
        assert_eq!(
            u.check(A, &basic("alice", "hunter2")).await,
            Verdict::Unauthorized
        );
        assert_eq!(
            u.check(A, &basic("carol", "s3cret")).await,
            Verdict::Unauthorized
        );
        assert_eq!(u.checked(), 4, "an unknown user costs a check too");
    }

    #[tokio::test]
    async fn malformed_or_missing_credentials_are_unauthorized_without_a_check() {
        let u = users(&[("alice", "s3cret")]);
        let mut h = HeaderMap::new();
        assert_eq!(u.check(A, &h).await, Verdict::Unauthorized);
        for bad in ["Bearer abc", "Basic !!!", "Basic", "Basic YWxpY2U="] {
            h.insert(header::AUTHORIZATION, bad.parse().unwrap());
            assert_eq!(u.check(A, &h).await, Verdict::Unauthorized, "{bad}");
        }
        assert_eq!(u.checked(), 0);
        // The scheme is case-insensitive; a password may hold ':'.
        let u = users(&[("alice", "a:b")]);
        let v = base64::engine::general_purpose::STANDARD.encode("alice:a:b");
        h.insert(header::AUTHORIZATION, format!("basic {v}").parse().unwrap());
        assert_eq!(u.check(A, &h).await, Verdict::Pass);
    }

    #[tokio::test]
    async fn a_password_past_72_bytes_does_not_match_on_its_first_72() {
        let long = "x".repeat(72);
        let u = users(&[("alice", &long)]);
        assert_eq!(
            u.check(A, &basic("alice", &format!("{long}y"))).await,
            Verdict::Unauthorized
        );
        assert_eq!(u.check(A, &basic("alice", &long)).await, Verdict::Pass);
    }

    #[tokio::test(start_paused = true)]
    async fn a_source_that_keeps_failing_gets_429_without_a_check() {
        let u = users(&[("alice", "s3cret")]);
        for i in 0..10 {
            let got = u.check(A, &basic("alice", &format!("guess{i}"))).await;
            assert_eq!(got, Verdict::Unauthorized, "{i}");
        }
        let before = u.checked();
        let Verdict::TooMany(wait) = u.check(A, &basic("alice", "guess-more")).await else {
            panic!("not limited");
        };
        assert!(wait > Duration::ZERO && wait <= FAILURE_REFILL, "{wait:?}");
        // Even the right password waits: the source is out of tries.
        assert!(matches!(
            u.check(A, &basic("alice", "s3cret")).await,
            Verdict::TooMany(_)
        ));
        assert_eq!(u.checked(), before);
        // Another source is not held up.
        assert_eq!(u.check(B, &basic("alice", "s3cret")).await, Verdict::Pass);
        // One failure comes back each refill.
        tokio::time::advance(FAILURE_REFILL).await;
        assert_eq!(
            u.check(A, &basic("alice", "wrong")).await,
            Verdict::Unauthorized
        );
        assert!(matches!(
            u.check(A, &basic("alice", "wrong")).await,
            Verdict::TooMany(_)
        ));
        // Once it passed from anywhere, the right pair passes without a check.
        assert_eq!(u.check(A, &basic("alice", "s3cret")).await, Verdict::Pass);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_guesses_at_once_from_one_source_get_no_more_checks_than_its_tries() {
        let u = users(&[("alice", "s3cret")]);
        let mut tasks = Vec::new();
        for i in 0..40 {
            let u = Arc::clone(&u);
            tasks.push(tokio::spawn(async move {
                u.check(A, &basic("alice", &format!("guess{i}"))).await
            }));
        }
        let mut limited = 0;
        for t in tasks {
            match t.await.unwrap() {
                Verdict::Unauthorized => {}
                Verdict::TooMany(_) => limited += 1,
                other => panic!("{other:?}"),
            }
        }
        // The few tries that came back while the guesses ran may add one.
        assert!(u.checked() <= FAILURE_BURST as usize + 1, "{}", u.checked());
        assert!(limited >= 40 - FAILURE_BURST as usize - 1, "{limited}");
    }

    #[tokio::test]
    async fn a_repeated_wrong_pair_costs_one_check() {
        let u = users(&[("alice", "s3cret")]);
        for _ in 0..5 {
            assert_eq!(
                u.check(A, &basic("alice", "old")).await,
                Verdict::Unauthorized
            );
        }
        assert_eq!(u.checked(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn checks_run_one_at_a_time() {
        // Slow enough that checks would overlap if they could.
        let u = users_at(8, &[("alice", "s3cret")]);
        let mut tasks = Vec::new();
        for i in 0..8u8 {
            let u = Arc::clone(&u);
            tasks.push(tokio::spawn(async move {
                let source = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 1, i));
                u.check(source, &basic("alice", &format!("p{i}"))).await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Verdict::Unauthorized);
        }
        let (running, run, most) = *u.counts.lock().unwrap();
        assert_eq!((running, run, most), (0, 8, CHECKS_AT_ONCE));
    }

    #[test]
    fn ipv6_sources_count_by_their_64() {
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::ffff:1".parse().unwrap();
        let c: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        assert_eq!(source_key(a), source_key(b));
        assert_ne!(source_key(a), source_key(c));
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(source_key(mapped), A);
    }

    #[test]
    fn the_failure_table_stays_bounded() {
        let now = Instant::now();
        let mut f = Failures::default();
        let mut refused = 0;
        for i in 0..(MAX_SOURCES as u32 + 100) {
            refused += usize::from(f.take(IpAddr::V4(i.into()), now).is_err());
        }
        // The sources past the table share one count of tries.
        assert_eq!(refused, 100 - FAILURE_BURST as usize);
        assert!(f.sources.len() <= MAX_SOURCES);
        assert!(f.rest.is_some());
        let mut r = Remembered::default();
        for i in 0..(BAD_REMEMBERED + 10) {
            let mut k = [0u8; 32];
            k[..8].copy_from_slice(&(i as u64).to_be_bytes());
            r.remember(k, false);
        }
        assert_eq!(
            (r.bad.len(), r.bad_order.len()),
            (BAD_REMEMBERED, BAD_REMEMBERED)
        );
    }
}
