//! Helpers shared by the known-bytes tests: hex text to bytes, and `name value` lines of the
//! recordings made by the scripts under `tests/data/`.

/// Bytes from hex text (tests' own literals and recordings: well-formed by construction).
pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Every value of the lines `name value` in a recording, in order.
#[allow(dead_code)]
pub fn fields<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .collect()
}

/// The value of the one line `name value` of a recording.
#[allow(dead_code)]
pub fn field<'a>(text: &'a str, name: &str) -> &'a str {
    fields(text, name)
        .first()
        .copied()
        .unwrap_or_else(|| panic!("no {name} line"))
}
