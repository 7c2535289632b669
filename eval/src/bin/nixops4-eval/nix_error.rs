//! Reads Nix's error text: which outputs an evaluation waits for, the driver's own
//! structured errors, and the position (`file:line:col`) Nix points at.
//!
//! The formats differ between Nix versions; these parsers accept 2.8's and current ones.

use nixops4_eval::protocol::{Position, ResourcePath};
use serde::Deserialize;

/// The resources whose outputs file an error says is missing, in order, without repeats.
pub fn waiting_for(error: &str, outputs_dir: &str) -> Vec<ResourcePath> {
    let prefix = format!("{outputs_dir}/");
    let mut found: Vec<ResourcePath> = Vec::new();
    let mut rest = error;
    while let Some(start) = rest.find(&prefix) {
        let after = &rest[start + prefix.len()..];
        let end = after.find(".json").unwrap_or(after.len());
        let key = &after[..end];
        rest = &after[end..];
        if key.is_empty() || key.contains(['\'', '"', ' ', '\n']) {
            continue;
        }
        let path = decode_key(key);
        if !found.contains(&path) {
            found.push(path);
        }
    }
    found
}

/// The inverse of the driver's file naming: segments joined by `.`, with `%`, `.` and `/`
/// percent-encoded.
fn decode_key(key: &str) -> ResourcePath {
    ResourcePath(
        key.split('.')
            .map(|segment| {
                segment
                    .replace("%2F", "/")
                    .replace("%2E", ".")
                    .replace("%25", "%")
            })
            .collect(),
    )
}

/// The file name the driver reads a resource's outputs from.
pub fn outputs_key(path: &ResourcePath) -> String {
    path.0
        .iter()
        .map(|segment| {
            segment
                .replace('%', "%25")
                .replace('.', "%2E")
                .replace('/', "%2F")
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// An error the driver raised on purpose (`nixops4-error:{json}` in the text).
#[derive(Debug, Deserialize, PartialEq)]
pub struct DriverError {
    pub message: String,
    pub position: Option<DriverPosition>,
}

#[derive(Debug, Deserialize, PartialEq)]
pub struct DriverPosition {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

/// The marker can also appear in a source excerpt of the driver that current Nix prints
/// with the error, so the first occurrence that parses counts.
pub fn driver_error(error: &str) -> Option<DriverError> {
    const MARKER: &str = "nixops4-error:";
    error.match_indices(MARKER).find_map(|(start, _)| {
        let mut stream = serde_json::Deserializer::from_str(&error[start + MARKER.len()..])
            .into_iter::<DriverError>();
        stream.next()?.ok()
    })
}

/// Where the error happened: the innermost `at FILE:LINE:COLUMN` in the text whose file
/// is a real one and not `skip` (the driver). Nix 2.8 gives one location; current Nix
/// lists the whole chain from the outermost call inwards.
pub fn position(error: &str, skip: &dyn Fn(&str) -> bool) -> Option<Position> {
    let mut found = None;
    for line in error.lines() {
        let Some(location) = line.trim().strip_prefix("at ") else {
            continue;
        };
        let location = location.strip_suffix(':').unwrap_or(location);
        let mut parts = location.rsplitn(3, ':');
        let (Some(column), Some(line_number), Some(file)) =
            (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (Ok(column), Ok(line_number)) = (column.parse(), line_number.parse()) else {
            continue;
        };
        if file.starts_with('«') || skip(file) {
            continue;
        }
        found = Some(Position {
            file: file.to_owned(),
            line: line_number,
            column,
        });
    }
    found
}

/// What went wrong, without Nix's source excerpts and call chain: Nix 2.8 says it on the
/// first line, current Nix on the last `error:` line.
pub fn message(error: &str) -> String {
    error
        .lines()
        .filter_map(|line| line.trim().strip_prefix("error:"))
        .map(str::trim)
        .rfind(|text| !text.is_empty())
        .unwrap_or_else(|| error.trim())
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NIX_2_8_UNDEFINED: &str = "error: undefined variable 'x'

       at /nix/store/abc-source/flake.nix:5:20:

            4|
            5|   foo = x;
             |         ^";

    const NIX_2_34_MISSING_FILE: &str = "error:
       … while calling the 'readFile' builtin
         at «string»:1:1:
            1| builtins.readFile \"/tmp/nx/p1.json\"
             | ^
       … while evaluating the attribute 'inputs'
         at /tmp/s/driver.nix:10:3:
       … while evaluating
         at /nix/store/abc-source/flake.nix:7:20:
       error: path '/tmp/s/outputs/default/1/a.json' does not exist";

    fn no_skip(_: &str) -> bool {
        false
    }

    #[test]
    fn reads_current_nix_errors() {
        assert_eq!(
            message(NIX_2_34_MISSING_FILE),
            "path '/tmp/s/outputs/default/1/a.json' does not exist"
        );
        let skip_driver = |file: &str| file.starts_with("/tmp/s/");
        assert_eq!(
            position(NIX_2_34_MISSING_FILE, &skip_driver).unwrap().file,
            "/nix/store/abc-source/flake.nix"
        );
        assert_eq!(
            waiting_for(NIX_2_34_MISSING_FILE, "/tmp/s/outputs/default/1"),
            vec![ResourcePath(vec!["a".into()])]
        );
    }

    #[test]
    fn finds_the_position_and_message() {
        assert_eq!(
            position(NIX_2_8_UNDEFINED, &no_skip),
            Some(Position {
                file: "/nix/store/abc-source/flake.nix".into(),
                line: 5,
                column: 20
            })
        );
        assert_eq!(message(NIX_2_8_UNDEFINED), "undefined variable 'x'");
    }

    #[test]
    fn finds_what_an_evaluation_waits_for() {
        let error = "error: opening file '/tmp/s/outputs/host.key.json': No such file or directory\n\
                     error: opening file '/tmp/s/outputs/a%2Eb.json': No such file or directory\n\
                     error: opening file '/tmp/s/outputs/host.key.json'";
        assert_eq!(
            waiting_for(error, "/tmp/s/outputs"),
            vec![
                ResourcePath(vec!["host".into(), "key".into()]),
                ResourcePath(vec!["a.b".into()])
            ]
        );
        assert!(waiting_for(NIX_2_8_UNDEFINED, "/tmp/s/outputs").is_empty());
    }

    #[test]
    fn keys_round_trip() {
        let path = ResourcePath(vec!["a.b".into(), "c/d%".into(), "e".into()]);
        let error = format!("opening file '/s/{}.json'", outputs_key(&path));
        assert_eq!(waiting_for(&error, "/s"), vec![path]);
    }

    #[test]
    fn reads_driver_errors() {
        let error = r#"error:
            12|   fail = message: position: throw "nixops4-error:${toJSON { inherit message position; }}";
       error: nixops4-error:{"message":"resource a has no `type`","position":{"column":5,"file":"/f.nix","line":3}}"#;
        let parsed = driver_error(error).unwrap();
        assert_eq!(parsed.message, "resource a has no `type`");
        assert_eq!(parsed.position.unwrap().line, 3);
    }
}
