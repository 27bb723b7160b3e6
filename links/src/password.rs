//! Passwords in front of a link: stored as Argon2id PHC strings (salted, slow on purpose), checked in constant
//! time. Hashing and checking each cost tens of milliseconds of CPU by design, so callers run them off the async
//! workers (`spawn_blocking`) and bound how many a client may ask for.

use argon2::{
    password_hash::{
        rand_core::OsRng, Output, ParamsString, PasswordHash, PasswordVerifier, SaltString,
    },
    Algorithm, Argon2, Block, Params, Version,
};

/// Argon2's working memory for one hash (19 MiB), kept by a caller that hashes again and again. A fresh
/// allocation per hash is what the crate does by itself, and glibc's heap kept every one of them: a shortener
/// measured 605 MiB of RSS after 34 hashes, never given back. One kept per hash slot bounds the memory at the
/// slots' count × 19 MiB.
pub struct Workspace(Vec<Block>);

impl Default for Workspace {
    fn default() -> Self {
        Self(vec![Block::default(); Params::default().block_count()])
    }
}

/// The PHC string of `password`, with a fresh random salt and the crate's default Argon2id parameters (OWASP's
/// minimum: 19 MiB, 2 passes, 1 lane), in a workspace of its own (see [`hash_in`] for callers that hash often).
///
/// # Errors
/// When hashing fails (it does not for a password within [`crate::validate::PASSWORD_LEN`]).
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    hash_in(password, &mut Workspace::default())
}

/// [`hash`], working in `workspace`: what `Argon2::hash_password` does, with the memory handed in.
///
/// # Errors
/// When hashing fails (it does not for a password within [`crate::validate::PASSWORD_LEN`]).
pub fn hash_in(
    password: &str,
    workspace: &mut Workspace,
) -> Result<String, argon2::password_hash::Error> {
    let argon2 = Argon2::default();
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_bytes)?;
    let hash = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        Ok(argon2.hash_password_into_with_memory(
            password.as_bytes(),
            salt_bytes,
            out,
            &mut workspace.0,
        )?)
    })?;
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params())?,
        salt: Some(salt.as_salt()),
        hash: Some(hash),
    }
    .to_string())
}

/// Whether `password` is the one `phc` was made from; a malformed `phc` matches nothing.
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_right_password_matches_its_salted_hash() {
        let first = hash("correct horse").expect("hash");
        let second = hash("correct horse").expect("hash");
        assert_ne!(first, second, "every hash has its own salt");
        assert!(first.starts_with("$argon2id$"));
        assert!(
            !first.contains('|'),
            "the cache codec separates fields with |"
        );
        assert!(verify("correct horse", &first));
        assert!(verify("correct horse", &second));
        assert!(!verify("correct hors", &first));
        assert!(!verify("correct horse", "not a phc string"));
    }

    #[test]
    fn a_workspace_used_again_makes_hashes_the_crate_itself_verifies() {
        let mut workspace = Workspace::default();
        let first = hash_in("hunter2", &mut workspace).expect("hash");
        let second = hash_in("hunter3", &mut workspace).expect("hash");

        assert!(
            first.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{first}"
        );
        assert!(verify("hunter2", &first) && !verify("hunter3", &first));
        assert!(verify("hunter3", &second) && !verify("hunter2", &second));
    }
}
