//! Tests of the password hasher: argon2id with pepper, the queue, rehashing.

use super::*;
use std::sync::atomic::Ordering;

const PEPPER: &str = "pepper-for-tests-0123456789";

/// Cheap parameters so the suite stays fast.
fn cheap() -> Argon2Params {
    Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    }
}

fn hasher_with(pepper: &str, params: Argon2Params) -> PasswordHasher {
    PasswordHasher::new(SecretString::from(pepper), params).unwrap()
}

fn hasher() -> PasswordHasher {
    hasher_with(PEPPER, cheap())
}

fn pw(s: &str) -> SecretString {
    SecretString::from(s)
}

fn computations(h: &PasswordHasher) -> usize {
    h.inner.computations.load(Ordering::SeqCst)
}

#[actix_rt::test]
async fn past_the_queue_or_its_wait_a_check_is_busy_not_queued() {
    tokio::time::pause();
    let h = hasher().with_queue(1, std::time::Duration::from_secs(3));
    let phc = h.hash(pw("correct horse battery")).await.unwrap();
    // Every argon2 slot is taken.
    let slots = h.running.available_permits() as u32;
    let held = h.running.acquire_many(slots).await.unwrap();

    // The first check waits for a slot; a second finds the queue full.
    let waiting = tokio::spawn({
        let (h, phc) = (h.clone(), phc.clone());
        async move { h.verify(pw("correct horse battery"), Some(phc)).await }
    });
    while h.queue.waiting.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        h.verify(pw("x"), Some(phc.clone())).await,
        Err(PasswordError::Busy)
    );
    // The waiting one gives up when its wait runs out.
    tokio::time::advance(std::time::Duration::from_secs(3)).await;
    assert_eq!(waiting.await.unwrap(), Err(PasswordError::Busy));
    assert_eq!(h.queue.waiting.load(Ordering::SeqCst), 0);

    // With a slot free again, checks run.
    drop(held);
    assert_eq!(
        h.verify(pw("correct horse battery"), Some(phc)).await,
        Ok(true)
    );
}

#[test]
fn defaults_are_the_owasp_minimum() {
    let d = Argon2Params::default();
    assert_eq!((d.memory_kib, d.iterations, d.parallelism), (19456, 2, 1));
    assert!(PasswordHasher::new(pw(PEPPER), d).is_ok());
}

#[actix_rt::test]
async fn correct_password_verifies() {
    let h = hasher();
    let phc = h.hash(pw("correct horse battery")).await.unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
    assert!(
        h.verify(pw("correct horse battery"), Some(phc))
            .await
            .unwrap()
    );
}

#[actix_rt::test]
async fn wrong_password_is_false() {
    let h = hasher();
    let phc = h.hash(pw("correct horse battery")).await.unwrap();
    assert!(
        !h.verify(pw("correct horse batterY"), Some(phc))
            .await
            .unwrap()
    );
}

#[actix_rt::test]
async fn wrong_pepper_is_false() {
    let phc = hasher().hash(pw("correct horse battery")).await.unwrap();
    let other = hasher_with("another-pepper-0123456789", cheap());
    assert!(
        !other
            .verify(pw("correct horse battery"), Some(phc))
            .await
            .unwrap()
    );
}

#[actix_rt::test]
async fn unknown_user_is_false_after_one_full_computation() {
    let h = hasher();
    assert!(h.dummy_hash_is_unset());
    assert!(!h.verify(pw("whatever123"), None).await.unwrap());
    assert_eq!(computations(&h), 1);
    assert!(!h.dummy_hash_is_unset());
    // Later calls verify against the cached dummy: still exactly one each.
    assert!(!h.verify(pw("whatever123"), None).await.unwrap());
    assert_eq!(computations(&h), 2);

    let phc = h.hash(pw("real password")).await.unwrap();
    let before = computations(&h);
    assert!(!h.verify(pw("wrong password"), Some(phc)).await.unwrap());
    assert_eq!(computations(&h) - before, 1);
}

#[actix_rt::test]
async fn dummy_hash_uses_the_configured_params() {
    let h = hasher();
    h.verify(pw("x"), None).await.unwrap();
    let dummy = h.inner.dummy_hash.get().unwrap();
    assert!(!h.needs_rehash(dummy));
}

#[actix_rt::test]
async fn phc_string_does_not_contain_the_password_or_pepper() {
    let h = hasher();
    let phc = h.hash(pw("SuperSecret-Password-42")).await.unwrap();
    assert!(!phc.contains("SuperSecret-Password-42"));
    assert!(!phc.contains(PEPPER));
}

#[actix_rt::test]
async fn hashes_of_the_same_password_differ() {
    let h = hasher();
    let a = h.hash(pw("same password")).await.unwrap();
    let b = h.hash(pw("same password")).await.unwrap();
    assert_ne!(a, b);
    assert!(h.verify(pw("same password"), Some(a)).await.unwrap());
    assert!(h.verify(pw("same password"), Some(b)).await.unwrap());
}

#[actix_rt::test]
async fn malformed_stored_hash_is_an_error_not_false() {
    let h = hasher();
    let err = h
        .verify(pw("pw"), Some("not a phc string".into()))
        .await
        .unwrap_err();
    assert_eq!(err, PasswordError::MalformedHash);
}

#[actix_rt::test]
async fn hashes_made_with_old_params_still_verify_and_need_rehash() {
    let old = hasher();
    let phc = old.hash(pw("long lived password")).await.unwrap();
    assert!(!old.needs_rehash(&phc));

    let stronger = Argon2Params {
        memory_kib: 128,
        iterations: 2,
        parallelism: 1,
    };
    let new = hasher_with(PEPPER, stronger);
    assert!(new.needs_rehash(&phc));
    assert!(
        new.verify(pw("long lived password"), Some(phc))
            .await
            .unwrap()
    );
    let fresh = new.hash(pw("long lived password")).await.unwrap();
    assert!(!new.needs_rehash(&fresh));
}

#[test]
fn foreign_or_broken_hashes_need_rehash() {
    let h = hasher();
    assert!(h.needs_rehash(""));
    assert!(h.needs_rehash("garbage"));
    assert!(h.needs_rehash(
        "$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$\
         MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI"
    ));
}

#[test]
fn short_pepper_and_bad_params_are_rejected() {
    let err = PasswordHasher::new(pw("short"), cheap()).unwrap_err();
    assert_eq!(err, PasswordError::PepperTooShort);
    for bad in [
        Argon2Params {
            memory_kib: 1,
            ..cheap()
        },
        Argon2Params {
            iterations: 0,
            ..cheap()
        },
        Argon2Params {
            parallelism: 0,
            ..cheap()
        },
    ] {
        let err = PasswordHasher::new(pw(PEPPER), bad).unwrap_err();
        assert_eq!(err, PasswordError::InvalidParams);
    }
}

#[test]
fn debug_shows_params_but_not_the_pepper() {
    let debug = format!("{:?}", hasher());
    assert!(debug.contains("memory_kib"));
    assert!(!debug.contains(PEPPER));
}

impl PasswordHasher {
    fn dummy_hash_is_unset(&self) -> bool {
        self.inner.dummy_hash.get().is_none()
    }
}
