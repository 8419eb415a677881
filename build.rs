//! Minifies the UI's stylesheet into `OUT_DIR/ui.css` for `src/ui.rs` to include: the
//! comments and layout of `src/ui.css` are for people, and cost the wasm about 0.3 KB gzip.

fn main() {
    println!("cargo:rerun-if-changed=src/ui.css");
    let css = std::fs::read_to_string("src/ui.css").expect("src/ui.css");
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("ui.css");
    std::fs::write(out, minify(&css)).expect("write the minified stylesheet");
}

/// Drops comments, folds whitespace to one space, and drops it around `{ } ; ,` and after
/// `:` (never before it, where a space separates a descendant from a pseudo-class). The
/// stylesheet has no strings that hold these characters.
fn minify(css: &str) -> String {
    let mut text = String::new();
    let mut rest = css;
    while let Some(start) = rest.find("/*") {
        text.push_str(&rest[..start]);
        rest = rest[start..]
            .split_once("*/")
            .map_or("", |(_, after)| after);
    }
    text.push_str(rest);
    let mut out = String::new();
    for word in text.split_whitespace() {
        let joins = |c: Option<char>| matches!(c, Some('{' | '}' | ';' | ','));
        if !out.is_empty() && !joins(out.chars().last()) && !joins(word.chars().next()) {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.replace(";}", "}").replace(": ", ":")
}
