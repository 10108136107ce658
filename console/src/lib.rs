//! The rtc ops console.
