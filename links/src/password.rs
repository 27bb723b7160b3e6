//! Passwords in front of a link: stored as Argon2id PHC strings (salted, slow on purpose), checked in constant
//! time. Hashing and checking each cost tens of milliseconds of CPU by design, so callers run them off the async
//! workers (`spawn_blocking`) and bound how many a client may ask for.

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};

/// The PHC string of `password`, with a fresh random salt and the crate's default Argon2id parameters (OWASP's
/// minimum: 19 MiB, 2 passes, 1 lane).
///
/// # Errors
/// When hashing fails (it does not for a password within [`crate::validate::PASSWORD_LEN`]).
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
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
}
