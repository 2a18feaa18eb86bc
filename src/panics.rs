//! Panics as log events. A panic the server recovers from (a decoder that chokes on a bad
//! file, a model batch that fails) must reach the operator through the structured log, not
//! as raw text on stderr; one that a caller's bad input causes is logged at debug only, so
//! a client sending junk cannot flood the log.

use std::any::Any;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};

thread_local! {
    static INPUT_AT_FAULT: Cell<bool> = const { Cell::new(false) };
}

/// Routes every panic message through `tracing` (call once, after logging is set up).
pub fn log_panics_through_tracing() {
    panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| l.to_string()).unwrap_or_default();
        let message = payload_message(info.payload());
        if INPUT_AT_FAULT.with(Cell::get) {
            tracing::debug!(%location, message, "a decoder panicked on bad input");
        } else {
            let backtrace = std::backtrace::Backtrace::capture();
            tracing::error!(%location, message, %backtrace, "panic");
        }
    }));
}

/// Runs `f` on untrusted input, turning a panic into `Err(message)`. Nothing `f` touches
/// may outlive it, so no half-updated state escapes.
pub fn catch_input_panic<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    let outer = INPUT_AT_FAULT.with(|flag| flag.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    INPUT_AT_FAULT.with(|flag| flag.set(outer));
    result.map_err(|payload| payload_message(&*payload).to_string())
}

/// The text of a panic payload (`panic!` gives a `&str` or a `String`).
pub fn payload_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown cause")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_panics_become_errors_with_their_message() {
        assert_eq!(catch_input_panic(|| 7), Ok(7));
        let err = catch_input_panic(|| -> u8 { panic!("bad header {}", 3) }).unwrap_err();
        assert_eq!(err, "bad header 3");
        assert!(!INPUT_AT_FAULT.with(Cell::get));
    }
}
