//! FileStore's own tests: the index kept with each save, rebuilt when lost or stale, the
//! files each operation touches, and links planted where it writes.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::*;
use crate::conformance::sample_record as record;
use crate::{Phase, ServiceName};

fn web() -> ServiceName {
    ServiceName::new("web").unwrap()
}

async fn saved(store: &FileStore, service: &str, phase: Phase) -> DeploymentRecord {
    let mut r = record(service);
    r.phase = phase;
    store.save(&mut r).await.unwrap();
    r
}

#[tokio::test]
async fn two_file_stores_on_one_directory_share_records_and_leases() {
    let dir = tempfile::tempdir().unwrap();
    let one = FileStore::open(dir.path()).unwrap();
    let two = FileStore::open(dir.path()).unwrap();
    let mut r = record("web");
    one.save(&mut r).await.unwrap();
    assert_eq!(two.load(&r.id).await.unwrap(), r);
    let ttl = Duration::from_secs(60);
    let now = SystemTime::now();
    one.acquire_lease(&web(), &r.id, "one", ttl, now)
        .await
        .unwrap();
    assert!(matches!(
        two.acquire_lease(&web(), &r.id, "two", ttl, now).await,
        Err(Error::Locked { .. })
    ));
    // Writes leave no temporary files behind.
    let names: Vec<_> = std::fs::read_dir(dir.path().join("deployments").join("web"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec![format!("{}.json", r.id)]);
}

#[tokio::test]
async fn a_corrupted_record_is_an_error_naming_the_file_and_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let mut r = record("web");
    store.save(&mut r).await.unwrap();
    let path = dir
        .path()
        .join("deployments")
        .join("web")
        .join(format!("{}.json", r.id));
    let full = std::fs::read(&path).unwrap();
    for broken in [
        &full[..full.len() / 2],
        b"not json".as_slice(),
        b"".as_slice(),
    ] {
        std::fs::write(&path, broken).unwrap();
        for result in [
            store.load(&r.id).await.map(|_| ()),
            store.list(None).await.map(|_| ()),
            store.unfinished(None).await.map(|_| ()),
            store.latest(&web()).await.map(|_| ()),
            store.save(&mut r.clone()).await,
        ] {
            match result {
                Err(Error::Store { message, .. }) => {
                    assert!(message.contains(&path.display().to_string()), "{message}");
                    assert!(message.contains("corrupted"), "{message}");
                }
                other => panic!("expected a store error, got {other:?}"),
            }
        }
        assert_eq!(
            std::fs::read(&path).unwrap(),
            broken,
            "the broken file was modified"
        );
    }
}

#[tokio::test]
async fn ids_that_are_not_file_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    match store.load(&DeploymentId::new("../../etc/passwd")).await {
        Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "deployment"),
        other => panic!("{other:?}"),
    }
}

/// Two services, each with finished history and unfinished deployments.
async fn journal(store: &FileStore) -> Vec<DeploymentRecord> {
    let mut open = Vec::new();
    for service in ["web", "billing"] {
        for _ in 0..3 {
            saved(store, service, Phase::Done).await;
        }
        open.push(saved(store, service, Phase::Attach).await);
        saved(store, service, Phase::RolledBack).await;
    }
    open.push(saved(store, "web", Phase::Bake).await);
    open.sort_by(|a, b| a.id.cmp(&b.id));
    open
}

fn index_file(root: &Path, service: &str) -> std::path::PathBuf {
    root.join("index").join(format!("{service}.json"))
}

#[tokio::test]
async fn a_lost_index_is_rebuilt_and_every_unfinished_deployment_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let open = journal(&store).await;
    let latest = store.latest(&web()).await.unwrap();
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();

    let reopened = FileStore::open(dir.path()).unwrap();
    assert_eq!(reopened.unfinished(None).await.unwrap(), open);
    assert_eq!(
        reopened.stats().index_rebuilds,
        2,
        "one rebuild per service"
    );
    assert_eq!(reopened.latest(&web()).await.unwrap(), latest);
    assert!(
        index_file(dir.path(), "web").exists(),
        "the rebuild is kept"
    );
    // A new deployment of a service whose index is lost still sees what is unfinished.
    std::fs::remove_file(index_file(dir.path(), "web")).unwrap();
    let fresh = FileStore::open(dir.path()).unwrap();
    saved(&fresh, "web", Phase::Provision).await;
    assert_eq!(fresh.unfinished(Some(&web())).await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_corrupted_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let open = journal(&store).await;
    let latest = store.latest(&web()).await.unwrap();
    let path = index_file(dir.path(), "web");
    let full = std::fs::read(&path).unwrap();
    for broken in [&full[..full.len() / 2], b"{}".as_slice(), b"".as_slice()] {
        std::fs::write(&path, broken).unwrap();
        let before = store.stats().index_rebuilds;
        let web_open: Vec<_> = open.iter().filter(|r| r.service() == &web()).collect();
        let found = store.unfinished(Some(&web())).await.unwrap();
        assert_eq!(found.iter().collect::<Vec<_>>(), web_open);
        assert_eq!(store.stats().index_rebuilds, before + 1);
        assert_eq!(store.latest(&web()).await.unwrap(), latest);
    }
}

#[tokio::test]
async fn an_index_left_behind_by_a_crash_is_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let mut a = saved(&store, "web", Phase::Bake).await;
    let stale = std::fs::read(index_file(dir.path(), "web")).unwrap();
    // A crash after a closing save wrote its record but not the index.
    a.phase = Phase::Done;
    store.save(&mut a).await.unwrap();
    std::fs::write(index_file(dir.path(), "web"), &stale).unwrap();
    assert!(store.unfinished(None).await.unwrap().is_empty());
    assert_eq!(store.stats().index_rebuilds, 1);
    // A crash during a first save wrote the index but not the record.
    let ghost = record("web");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(index_file(dir.path(), "web")).unwrap()).unwrap();
    index["latest"] = ghost.id.to_string().into();
    index["unfinished"] = serde_json::json!([ghost.id.to_string()]);
    std::fs::write(index_file(dir.path(), "web"), index.to_string()).unwrap();
    assert_eq!(store.latest(&web()).await.unwrap(), Some(a.clone()));
    assert!(store.unfinished(Some(&web())).await.unwrap().is_empty());
    assert_eq!(store.stats().index_rebuilds, 2);
}

#[tokio::test]
async fn a_deployment_reads_the_same_files_whatever_the_history() {
    let mut costs = Vec::new();
    for history in [10, 300] {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        for _ in 0..history {
            saved(&store, "web", Phase::Done).await;
        }
        let before = store.stats();
        store.unfinished(Some(&web())).await.unwrap();
        let mut r = saved(&store, "web", Phase::Provision).await;
        r.phase = Phase::Done;
        store.save(&mut r).await.unwrap();
        store.latest(&web()).await.unwrap();
        let after = store.stats();
        costs.push((
            after.files_read - before.files_read,
            after.dirs_listed - before.dirs_listed,
        ));
    }
    assert_eq!(
        costs[0], costs[1],
        "file reads and listings, 10 vs 300 records"
    );
}

#[tokio::test]
async fn retention_trims_in_batches_of_a_sixteenth() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path())
        .unwrap()
        .with_retention(Retention::keep(32));
    let count = || {
        std::fs::read_dir(dir.path().join("deployments/web"))
            .unwrap()
            .count()
    };
    for _ in 0..33 {
        saved(&store, "web", Phase::Done).await;
    }
    assert_eq!(count(), 33, "one over keep is below the batch of 2");
    saved(&store, "web", Phase::Done).await;
    assert_eq!(count(), 32);
    assert_eq!(store.stats().files_removed, 2);
}

/// A victim file and a symbolic link to it at `link`.
#[cfg(unix)]
fn plant(dir: &Path, link: &Path) -> std::path::PathBuf {
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, link).unwrap();
    victim
}

#[cfg(unix)]
#[tokio::test]
async fn a_record_is_never_written_through_a_link_at_the_temporary_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path().join("store")).unwrap();
    let mut r = saved(&store, "web", Phase::Attach).await;
    let service_dir = dir.path().join("store/deployments/web");
    let path = service_dir.join(format!("{}.json", r.id));
    // The name the temporary file once had, predictable by anyone.
    let tmp = service_dir.join(format!(".{}.json.tmp-{}", r.id, std::process::id()));
    let victim = plant(dir.path(), &tmp);
    r.phase = Phase::Bake;
    store.save(&mut r).await.unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(!path.is_symlink(), "the record was replaced by the link");
    assert_eq!(store.load(&r.id).await.unwrap().phase, Phase::Bake);
}

#[cfg(unix)]
#[tokio::test]
async fn a_link_at_the_lock_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path().join("store")).unwrap();
    let lock = dir.path().join("store/.lock");
    let _ = std::fs::remove_file(&lock);
    // A dangling link: opening it to create the lock would create a file where it points.
    let target = dir.path().join("created-through-the-link");
    std::os::unix::fs::symlink(&target, &lock).unwrap();
    match store.save(&mut record("web")).await {
        Err(Error::Store { message, .. }) => {
            assert!(message.contains(&lock.display().to_string()), "{message}");
            assert!(message.contains("symbolic link"), "{message}");
        }
        other => panic!("expected a Store error naming the lock file, got {other:?}"),
    }
    assert!(!target.exists(), "a file was created through the link");
}

#[cfg(unix)]
#[tokio::test]
async fn directories_the_store_creates_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path().join("store")).unwrap();
    saved(&store, "web", Phase::Attach).await;
    for sub in ["", "deployments", "leases", "index", "deployments/web"] {
        let path = dir.path().join("store").join(sub);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{}", path.display());
    }
}
