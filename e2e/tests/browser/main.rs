//! The web page in a real headless Chromium, against a real shortener and redirect.

mod helpers;
mod live;
mod manage;
mod page;
mod routing;
