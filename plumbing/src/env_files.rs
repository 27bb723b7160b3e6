//! `X_FILE`: every setting a binary reads from an environment variable `X` may come instead from the file that
//! `X_FILE` names, so that secrets (connection strings with passwords, ZooKeeper credentials) reach a pod as a
//! mounted Secret rather than in its environment, where `kubectl describe`, crash reporters and child processes
//! see them. [`parse`] fills `X` from the file (less one trailing newline, which `kubectl create secret
//! --from-file` and editors leave) before clap reads the environment, so every flag gains the `_FILE` form without
//! a change to its definition.

use std::{collections::BTreeSet, ffi::OsString, io, path::Path};

use anyhow::Context as _;

/// Parses `P`'s command line after filling each environment variable `X` it reads from the file named by `X_FILE`,
/// where that is set. Call it first in `main`, before any runtime or other thread starts: it changes the
/// process environment, which is safe only while no other thread can be reading it.
///
/// # Errors
/// When `X` and `X_FILE` are both set, or the file cannot be read or is not UTF-8; the message names both.
/// (clap's own errors still print and exit as `P::parse` does.)
pub fn parse<P: clap::Parser>() -> anyhow::Result<P> {
    let names = env_names(&P::command());
    let filled = from_files(
        &names,
        |name| std::env::var_os(name),
        |path| std::fs::read(path),
    )?;
    for (name, value) in filled {
        std::env::set_var(name, value);
    }
    Ok(P::parse())
}

/// Every environment variable that `command` or one of its subcommands reads.
pub fn env_names(command: &clap::Command) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = command
        .get_arguments()
        .filter_map(clap::Arg::get_env)
        .map(|name| name.to_string_lossy().into_owned())
        .collect();
    for subcommand in command.get_subcommands() {
        names.extend(env_names(subcommand));
    }
    names
}

/// The variables to set: for each of `names` whose `{name}_FILE` is set (as `var` reads the environment), the
/// content of that file (as `read` reads it) less one trailing newline.
///
/// # Errors
/// When a variable and its `_FILE` are both set, or the file cannot be read or is not UTF-8.
pub fn from_files(
    names: &BTreeSet<String>,
    var: impl Fn(&str) -> Option<OsString>,
    read: impl Fn(&Path) -> io::Result<Vec<u8>>,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut filled = Vec::new();
    for name in names {
        let file_var = format!("{name}_FILE");
        let Some(path) = var(&file_var) else {
            continue;
        };
        if var(name).is_some() {
            anyhow::bail!("{name} and {file_var} are both set: set only one of them");
        }
        let path = Path::new(&path);
        let bytes =
            read(path).with_context(|| format!("cannot read {file_var} ({})", path.display()))?;
        let mut text = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("{file_var} ({}) is not UTF-8 text", path.display()))?;
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        filled.push((name.clone(), text));
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use clap::CommandFactory as _;

    use super::*;

    /// A command line with a flag at the top and one in a subcommand.
    #[derive(clap::Parser)]
    struct Cli {
        #[arg(long, env = "TOP_SECRET")]
        top: Option<String>,
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(clap::Subcommand)]
    enum Sub {
        Serve {
            #[arg(long, env = "DATABASE_URL")]
            database_url: String,
        },
    }

    fn names() -> BTreeSet<String> {
        ["DATABASE_URL".to_owned()].into()
    }

    /// An environment of `pairs`.
    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let vars: HashMap<String, OsString> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), OsString::from(value)))
            .collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn the_variables_of_a_command_and_its_subcommands_are_found() {
        let names = env_names(&Cli::command());

        assert!(names.contains("TOP_SECRET"), "{names:?}");
        assert!(names.contains("DATABASE_URL"), "{names:?}");
    }

    #[test]
    fn a_variable_comes_from_its_file_less_one_trailing_newline() {
        let path = std::env::temp_dir().join(format!("env-files-{}", std::process::id()));
        std::fs::write(&path, "postgres://app:s3cr3t@db/app\n\n").expect("written");

        let filled = from_files(
            &names(),
            env(&[("DATABASE_URL_FILE", path.to_str().expect("utf-8"))]),
            |path| std::fs::read(path),
        );
        std::fs::remove_file(&path).expect("removed");

        assert_eq!(
            filled.expect("read"),
            vec![(
                "DATABASE_URL".to_owned(),
                "postgres://app:s3cr3t@db/app\n".to_owned()
            )]
        );
    }

    #[test]
    fn a_crlf_ending_is_one_newline_and_text_without_one_is_kept_whole() {
        let read = |text: &'static str| {
            from_files(&names(), env(&[("DATABASE_URL_FILE", "/f")]), move |_| {
                Ok(text.as_bytes().to_vec())
            })
            .expect("read")[0]
                .1
                .clone()
        };

        assert_eq!(read("a\r\n"), "a");
        assert_eq!(read("a"), "a");
    }

    #[test]
    fn a_variable_set_both_ways_is_an_error_naming_both() {
        let error = from_files(
            &names(),
            env(&[("DATABASE_URL", "x"), ("DATABASE_URL_FILE", "/f")]),
            |_| Ok(Vec::new()),
        )
        .expect_err("refused");

        let message = error.to_string();
        assert!(
            message.contains("DATABASE_URL and DATABASE_URL_FILE"),
            "{message}"
        );
    }

    #[test]
    fn a_file_that_cannot_be_read_is_an_error_naming_the_variable_and_the_path() {
        let error = from_files(
            &names(),
            env(&[("DATABASE_URL_FILE", "/no/such/file")]),
            |path| std::fs::read(path),
        )
        .expect_err("refused");

        let message = format!("{error:#}");
        assert!(
            message.contains("DATABASE_URL_FILE (/no/such/file)"),
            "{message}"
        );
        assert!(message.contains("No such file"), "{message}");
    }

    #[test]
    fn variables_without_a_file_are_left_alone() {
        let filled = from_files(&names(), env(&[("DATABASE_URL", "x")]), |_| {
            panic!("nothing to read")
        })
        .expect("nothing to do");

        assert!(filled.is_empty());
    }
}
