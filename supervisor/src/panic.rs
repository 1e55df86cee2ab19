//! The process panic hook: every panic is logged through tracing with an
//! incident id, and its message is kept for the guard of the actor it killed.

use std::any::Any;
use std::cell::RefCell;
use std::sync::Once;

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Install the hook once per process; later calls do nothing.
///
/// Panics are logged as `error` events with `incident_id`, the message and
/// the location. When no tracing subscriber is installed (a bare unit test),
/// the previous hook also runs so the panic is not silent.
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = message_of(info.payload());
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let incident_id = uuid::Uuid::now_v7();
            tracing::error!(
                %incident_id,
                panic.message = %message,
                panic.location = %location,
                "panic"
            );
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(message));
            if !tracing::dispatcher::has_been_set() {
                previous(info);
            }
        }));
    });
}

/// The message of the last panic on this thread, taken.
pub(crate) fn take_last() -> Option<String> {
    LAST_PANIC.with(|p| p.borrow_mut().take())
}

/// The message of a caught panic payload (and forget the thread's record of it).
pub(crate) fn take_message(payload: &(dyn Any + Send)) -> String {
    let _ = take_last();
    message_of(payload)
}

fn message_of(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
