//! UTC timestamps for state events and backup file names.

use std::time::SystemTime;

/// RFC 3339 with nanoseconds, as upstream's state events carry: `2026-11-25T01:02:03.123456789Z`.
pub fn rfc3339_now() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

/// Compact and sortable, safe in a file name: `20261125T010203Z`.
pub fn compact_utc() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(['-', ':'], "")
}

#[cfg(test)]
mod tests {
    #[test]
    fn compact_form_has_no_separators() {
        let stamp = super::compact_utc();
        assert_eq!(stamp.len(), "20261125T010203Z".len(), "{stamp}");
        assert!(
            stamp.ends_with('Z') && stamp.as_bytes()[8] == b'T',
            "{stamp}"
        );
    }
}
