//! Tests of rules and variants, by subject.

mod choose;
mod json;
mod parse;
mod properties;
mod visitor;
