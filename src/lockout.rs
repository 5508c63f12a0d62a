//! The lockout breaker: after N logon failures with one credential across the fleet, stop
//! using it, so a wrong password cannot lock the service account out.
//!
//! Until a credential has logged on once somewhere, at most `threshold - failures` logons with
//! it are in flight at a time; a fleet scanned 64 hosts at a time with a wrong password would
//! otherwise fail 64 times before the first failure was counted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Debug, Default)]
struct CredentialState {
    failures: u32,
    in_flight: u32,
    succeeded: bool,
}

/// Shared by every host task of a run.
#[derive(Debug)]
pub struct LockoutBreaker {
    threshold: u32,
    state: Mutex<HashMap<String, CredentialState>>,
    changed: Notify,
}

/// Whether a logon may be tried.
#[derive(Debug)]
pub enum Admission {
    Go(LogonTicket),
    /// The credential has failed `failures` times; it is not tried again this run.
    Tripped {
        failures: u32,
    },
}

/// One admitted logon attempt. Report how it went; dropping it unreported counts as
/// "neither success nor refused logon" (e.g. the host was unreachable).
#[derive(Debug)]
pub struct LogonTicket {
    breaker: Arc<LockoutBreaker>,
    credential: String,
    settled: bool,
}

impl LockoutBreaker {
    pub fn new(threshold: u32) -> Arc<Self> {
        Arc::new(LockoutBreaker {
            threshold: threshold.max(1),
            state: Mutex::new(HashMap::new()),
            changed: Notify::new(),
        })
    }

    /// Waits until a logon with `credential` may be tried, or says it may not.
    pub async fn admit(self: &Arc<Self>, credential: &str) -> Admission {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            {
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                let st = state.entry(credential.to_owned()).or_default();
                if st.failures >= self.threshold {
                    return Admission::Tripped { failures: st.failures };
                }
                if st.succeeded || st.failures + st.in_flight < self.threshold {
                    st.in_flight += 1;
                    return Admission::Go(LogonTicket {
                        breaker: Arc::clone(self),
                        credential: credential.to_owned(),
                        settled: false,
                    });
                }
                // Register before unlocking so a settle in between is not missed.
                notified.as_mut().enable();
            }
            notified.await;
        }
    }

    /// Logon failures counted so far for `credential`.
    pub fn failures(&self, credential: &str) -> u32 {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.get(credential).map_or(0, |s| s.failures)
    }

    fn settle(&self, credential: &str, outcome: Option<bool>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let st = state.entry(credential.to_owned()).or_default();
        st.in_flight = st.in_flight.saturating_sub(1);
        match outcome {
            Some(true) => st.succeeded = true,
            Some(false) => st.failures += 1,
            None => {}
        }
        drop(state);
        self.changed.notify_waiters();
    }
}

impl LogonTicket {
    pub fn logon_succeeded(mut self) {
        self.settled = true;
        self.breaker.settle(&self.credential, Some(true));
    }

    pub fn logon_refused(mut self) {
        self.settled = true;
        self.breaker.settle(&self.credential, Some(false));
    }
}

impl Drop for LogonTicket {
    fn drop(&mut self) {
        if !self.settled {
            self.breaker.settle(&self.credential, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn three_refusals_trip_the_breaker_and_in_flight_attempts_are_bounded() {
        let breaker = LockoutBreaker::new(3);
        let mut tickets = Vec::new();
        for _ in 0..3 {
            match breaker.admit("svc").await {
                Admission::Go(t) => tickets.push(t),
                Admission::Tripped { .. } => panic!("tripped too early"),
            }
        }
        // A fourth attempt must wait while three are in flight.
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), breaker.admit("svc")).await;
        assert!(waiting.is_err(), "a fourth logon went out while three were unsettled");
        for t in tickets {
            t.logon_refused();
        }
        assert!(matches!(breaker.admit("svc").await, Admission::Tripped { failures: 3 }));
        // Other credentials are not affected.
        assert!(matches!(breaker.admit("other").await, Admission::Go(_)));
    }

    #[tokio::test]
    async fn a_success_lifts_the_in_flight_bound_and_unreachable_hosts_do_not_count() {
        let breaker = LockoutBreaker::new(3);
        let Admission::Go(t) = breaker.admit("svc").await else {
            panic!()
        };
        drop(t); // unreachable host: settles as neither
        assert_eq!(breaker.failures("svc"), 0);
        let Admission::Go(t) = breaker.admit("svc").await else {
            panic!()
        };
        t.logon_succeeded();
        // Ten logons in flight at once: each admission must come without waiting.
        let mut held = Vec::new();
        for _ in 0..10 {
            let admitted = tokio::time::timeout(std::time::Duration::from_millis(50), breaker.admit("svc")).await;
            let Ok(Admission::Go(t)) = admitted else {
                panic!("a logon waited although the credential works")
            };
            held.push(t);
        }
    }
}
