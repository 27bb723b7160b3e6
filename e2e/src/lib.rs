//! End-to-end tests of snowlink as a person uses it: a headless Chromium (Debian's `chromium` and
//! `chromium-driver`, driven over WebDriver) on the shortener's web page, with a real redirect service behind
//! the short links. The crate has no code of its own; its tests live in `tests/browser/`, kept out of the
//! service crates so the WebDriver client is compiled only here.
#![forbid(unsafe_code)]
