use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use skybook_domain::RetryPolicy;
use skybook_worker::Supervisor;

fn quick() -> RetryPolicy {
    RetryPolicy {
        initial_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_retries: 0,
        max_elapsed: Duration::ZERO,
    }
}

#[tokio::test]
async fn a_loop_that_panics_or_fails_is_restarted_until_it_runs() {
    let mut supervisor = Supervisor::new(quick());
    let starts = Arc::new(AtomicU32::new(0));
    let (running_tx, mut running) = tokio::sync::mpsc::channel::<()>(1);
    let counter = Arc::clone(&starts);
    supervisor.spawn("flaky", move |cancel| {
        let (counter, running_tx) = (Arc::clone(&counter), running_tx.clone());
        async move {
            match counter.fetch_add(1, Ordering::SeqCst) {
                0 => panic!("first start panics"),
                1 => anyhow::bail!("second start fails"),
                _ => {
                    running_tx.send(()).await.ok();
                    cancel.cancelled().await;
                    Ok(())
                }
            }
        }
    });
    running.recv().await.expect("the third start runs");
    assert_eq!(
        supervisor.restarts(),
        2,
        "one restart after the panic, one after the error"
    );
    supervisor.shutdown().await;
    assert_eq!(
        starts.load(Ordering::SeqCst),
        3,
        "no restart after a clean shutdown"
    );
}
