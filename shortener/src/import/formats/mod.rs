//! Each format an import reads, one module each, with the file it reads and where its format was found.

pub mod bitly;
pub mod csv;
pub mod kutt;
pub mod shlink;
pub mod yourls;
