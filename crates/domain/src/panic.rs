//! What a panic said: its payload as text (a `&str` or `String` message; anything else is named as such).

use std::any::Any;

pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn messages_of_both_kinds() {
        let literal = std::panic::catch_unwind(|| panic!("plain")).unwrap_err();
        let formatted = std::panic::catch_unwind(|| panic!("n = {}", 4)).unwrap_err();
        let other = std::panic::catch_unwind(|| std::panic::panic_any(7_u8)).unwrap_err();
        assert_eq!(super::panic_message(literal.as_ref()), "plain");
        assert_eq!(super::panic_message(formatted.as_ref()), "n = 4");
        assert_eq!(
            super::panic_message(other.as_ref()),
            "panic with a non-string payload"
        );
    }
}
