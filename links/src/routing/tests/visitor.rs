//! Reading a visitor: the OS from real User-Agents, the language from Accept-Language, the country header.

use super::super::{country_code, primary_language, Lang, Os};

const IPHONE_SAFARI: &str =
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
                             (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const IPAD_SAFARI: &str =
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) \
                           Version/17.5 Mobile/15E148 Safari/604.1";
const ANDROID_CHROME: &str =
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) \
                              Chrome/125.0.0.0 Mobile Safari/537.36";
const ANDROID_FIREFOX: &str =
    "Mozilla/5.0 (Android 14; Mobile; rv:126.0) Gecko/126.0 Firefox/126.0";
const WINDOWS_EDGE: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                            Chrome/125.0.0.0 Safari/537.36 Edg/125.0.2535.67";
const MACOS_SAFARI: &str =
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) \
                            Version/17.5 Safari/605.1.15";
const LINUX_FIREFOX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0";
const CHROMEOS: &str =
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) \
                        Chrome/125.0.0.0 Safari/537.36";
const ANDROID_APP: &str = "Dalvik/2.1.0 (Linux; U; Android 11; SM-G991B Build/RP1A.200720.012)";
const IPHONE_APP: &str =
    "Instagram 300.0.0.0 (iPhone14,2; iOS 16_0; en_US; en; scale=3.00; 1170x2532)";

#[test]
fn real_user_agents_name_their_os() {
    let cases = [
        (IPHONE_SAFARI, Os::Ios),
        (IPAD_SAFARI, Os::Ios),
        (ANDROID_CHROME, Os::Android),
        (ANDROID_FIREFOX, Os::Android),
        (WINDOWS_EDGE, Os::Windows),
        (MACOS_SAFARI, Os::Macos),
        (LINUX_FIREFOX, Os::Linux),
        (CHROMEOS, Os::Linux),
        (ANDROID_APP, Os::Android),
        (IPHONE_APP, Os::Ios),
    ];
    for (agent, os) in cases {
        assert_eq!(Os::of(agent.as_bytes()), os, "{agent}");
    }
}

#[test]
fn an_agent_that_names_no_os_is_other() {
    assert_eq!(Os::of(b"curl/8.5.0"), Os::Other);
    assert_eq!(
        Os::of(b"MyApp/1.0 (compatible) Windows"),
        Os::Other,
        "only the first comment is read"
    );
    assert_eq!(Os::of(b""), Os::Other);
    assert_eq!(Os::of(&[0xff; 4096]), Os::Other);
}

#[test]
fn os_names_read_back() {
    for os in [Os::Ios, Os::Android, Os::Windows, Os::Macos, Os::Linux] {
        assert_eq!(Os::from_name(os.name()), Some(os));
    }
    assert_eq!(Os::from_name("other"), None);
}

fn lang(subtag: &str) -> Option<Lang> {
    Lang::new(subtag.as_bytes())
}

#[test]
fn the_language_is_the_primary_subtag_of_the_highest_q() {
    assert_eq!(primary_language(b"de-DE,de;q=0.9,en;q=0.8"), lang("de"));
    assert_eq!(primary_language(b"en;q=0.5, fr"), lang("fr"));
    assert_eq!(primary_language(b"EN-us"), lang("en"));
    assert_eq!(primary_language(b"fil-PH;q=0.7, en;q=0.3"), lang("fil"));
}

#[test]
fn ties_go_to_the_first_listed() {
    assert_eq!(primary_language(b"it;q=0.8, es;q=0.8"), lang("it"));
    assert_eq!(primary_language(b"pt, ja"), lang("pt"));
}

#[test]
fn zero_q_stars_and_garbage_give_no_language() {
    assert_eq!(primary_language(b"de;q=0"), None);
    assert_eq!(primary_language(b"*"), None);
    assert_eq!(primary_language(b"*, nl;q=0.1"), lang("nl"));
    assert_eq!(primary_language(b""), None);
    assert_eq!(primary_language(b";;;,,,==q"), None);
    assert_eq!(primary_language(b"de;q=2"), None);
    assert_eq!(primary_language(b"de;q=0.1234"), None);
    assert_eq!(primary_language(b"english"), None);
}

#[test]
fn a_hostile_header_is_read_only_so_far() {
    let mut header = b"en;q=0.1,".repeat(40);
    header.extend_from_slice(b"de");
    assert_eq!(primary_language(&header), lang("en"));
    let mut long = b"x".repeat(1021);
    long.extend_from_slice(b",deu");
    assert_eq!(
        primary_language(&long),
        None,
        "an entry cut at the byte bound is dropped, not read as de"
    );
}

#[test]
fn a_country_header_is_two_letters_uppercased() {
    assert_eq!(country_code(b"de"), Some(*b"DE"));
    assert_eq!(country_code(b" FR "), Some(*b"FR"));
    assert_eq!(country_code(b"T1"), None);
    assert_eq!(country_code(b"DEU"), None);
    assert_eq!(country_code(b""), None);
}
