//! Reads of one entry point's actions that overlap share one request: the plan reads the
//! routing and the service's target groups at once, and both need the listener.
//!
//! A read joins one that is in flight when it starts; a read that starts after the other
//! ended makes its own request, and so does every read that starts after a write to the
//! entry point began, so no caller sees the actions from before a write it waited for. A
//! failed read is not shared: whoever joined it reads again on its own, and the error goes
//! to the caller whose request failed.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_elasticloadbalancingv2::types::Action;
use immutable_core::Result;
use tokio::sync::OnceCell;

/// One read in flight: its actions once it succeeded, `None` once it failed.
type InFlight = Arc<OnceCell<Option<Vec<Action>>>>;

/// The reads in flight, by entry point ARN.
#[derive(Debug, Clone, Default)]
pub(super) struct SharedReads(Arc<Mutex<HashMap<String, InFlight>>>);

impl SharedReads {
    /// The actions of `arn`: those of a read in flight, or `read`'s.
    pub(super) async fn read<F, Fut>(&self, arn: &str, read: F) -> Result<Vec<Action>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Vec<Action>>>,
    {
        let cell = self.map().entry(arn.to_owned()).or_default().clone();
        let mut failed = None;
        let got = {
            let (failed, read) = (&mut failed, &read);
            cell.get_or_init(|| async move {
                match read().await {
                    Ok(actions) => Some(actions),
                    Err(e) => {
                        *failed = Some(e);
                        None
                    }
                }
            })
            .await
            .clone()
        };
        self.done(arn, &cell);
        match (got, failed) {
            (_, Some(e)) => Err(e),
            (Some(actions), None) => Ok(actions),
            // The read joined failed for its own caller: read again.
            (None, None) => read().await,
        }
    }

    /// Reads that start from now on make their own request: called as a write begins and
    /// again as it ends.
    pub(super) fn forget(&self, arn: &str) {
        self.map().remove(arn);
    }

    /// Ends the sharing of `cell`, unless a later read already replaced it.
    fn done(&self, arn: &str, cell: &InFlight) {
        let mut map = self.map();
        if map.get(arn).is_some_and(|c| Arc::ptr_eq(c, cell)) {
            map.remove(arn);
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, InFlight>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum;
    use immutable_core::{Error, ResourceKind};

    use super::*;

    fn actions(order: u32) -> Vec<Action> {
        vec![
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .order(order as i32)
                .build(),
        ]
    }

    /// A listener whose reads take 10 ms and answer the number of reads before them.
    #[derive(Default)]
    struct Listener {
        requests: AtomicU32,
        fail_first: bool,
    }

    impl Listener {
        async fn read(&self) -> Result<Vec<Action>> {
            let n = self.requests.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            if self.fail_first && n == 0 {
                return Err(Error::not_found(ResourceKind::EntryPoint, "l"));
            }
            Ok(actions(n))
        }

        fn requests(&self) -> u32 {
            self.requests.load(Ordering::SeqCst)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn overlapping_reads_share_one_request_and_later_ones_make_their_own() {
        let (shared, l) = (SharedReads::default(), Listener::default());
        let read = || l.read();
        let (a, b) = tokio::join!(shared.read("l", read), shared.read("l", read));
        assert_eq!(a.unwrap(), actions(0));
        assert_eq!(b.unwrap(), actions(0));
        assert_eq!(l.requests(), 1, "one request for both");
        assert_eq!(shared.read("l", read).await.unwrap(), actions(1));
        let (a, b) = tokio::join!(shared.read("l", read), shared.read("m", read));
        assert_eq!((a.unwrap(), b.unwrap()), (actions(2), actions(3)));
        assert!(shared.map().is_empty(), "nothing left in flight");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_read_goes_to_its_caller_and_the_one_who_joined_reads_again() {
        let shared = SharedReads::default();
        let l = Listener {
            fail_first: true,
            ..Listener::default()
        };
        let read = || l.read();
        let (a, b) = tokio::join!(shared.read("l", read), shared.read("l", read));
        assert!(matches!(a, Err(Error::NotFound { .. })), "{a:?}");
        assert_eq!(b.unwrap(), actions(1));
        assert_eq!(l.requests(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_makes_later_reads_start_their_own_request() {
        let (shared, l) = (SharedReads::default(), Listener::default());
        let read = || l.read();
        let after_write = async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            shared.forget("l");
            shared.read("l", read).await
        };
        let (a, b) = tokio::join!(shared.read("l", read), after_write);
        assert_eq!(a.unwrap(), actions(0));
        assert_eq!(
            b.unwrap(),
            actions(1),
            "the read after the write did not join"
        );
        assert!(shared.map().is_empty());
    }
}
