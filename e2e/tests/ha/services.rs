//! The ha topology seen from outside, as an operator sees it: each node's role (ZooKeeper's `srvr`, Patroni's
//! REST API), killing a node with SIGKILL through the pid files `scripts/services.sh` writes, and bringing it
//! back with `SNOWLINK_TOPOLOGY=ha scripts/services.sh up`. Tests kill shared nodes, so they take [`serial`].

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use tokio::sync::{Mutex, MutexGuard};

/// One fault at a time: the nodes are shared by every test in this binary.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// Waits for the other tests' faults to be over.
pub async fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// The checkout (where `.run/` and `scripts/` are).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e sits in the workspace")
        .to_path_buf()
}

/// Runs `scripts/services.sh COMMAND` for the ha topology; its exit status and output.
pub fn services_sh(command: &str) -> (bool, String) {
    let output = Command::new(root().join("scripts/services.sh"))
        .arg(command)
        .env("SNOWLINK_TOPOLOGY", "ha")
        .output()
        .expect("scripts/services.sh runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Sends SIGKILL to the process whose pid is the first line of `pidfile`.
pub fn kill_by_pidfile(pidfile: &Path) {
    let text = std::fs::read_to_string(pidfile)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", pidfile.display()));
    let pid = text.lines().next().unwrap_or("").trim().to_owned();
    assert!(
        !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()),
        "no pid in {}",
        pidfile.display()
    );
    let status = Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -KILL {pid} ({})", pidfile.display());
}

/// Brings every node back when dropped, test passed or not, and waits until `status` says the cluster is whole
/// (a panic in a drop while already panicking would abort, so then it only reports).
pub struct Restore {
    /// What was killed, for the messages.
    what: String,
    /// Brought back already (by [`Restore::now`]).
    done: bool,
}

impl Restore {
    /// A guard for `what` (named in messages).
    pub fn new(what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            done: false,
        }
    }

    /// Brings the nodes back now, and fails the test unless the cluster is whole again in `within`.
    pub async fn now(mut self, within: Duration) {
        let started = Instant::now();
        let (up, output) = services_sh("up");
        assert!(up, "bringing back {} failed:\n{output}", self.what);
        wait_whole(within.saturating_sub(started.elapsed())).await;
        eprintln!(
            "{} back and the cluster whole in {:.1} s",
            self.what,
            started.elapsed().as_secs_f64()
        );
        self.done = true;
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let (up, output) = services_sh("up");
        if !up {
            eprintln!("bringing back {} failed:\n{output}", self.what);
        }
    }
}

/// Polls `services.sh status` until it exits 0 (every node up, in its role); fails the test past `within`.
pub async fn wait_whole(within: Duration) {
    let output = testkit::eventually(within, "the cluster is whole", || async {
        let (whole, output) = tokio::task::spawn_blocking(|| services_sh("status"))
            .await
            .expect("join");
        whole.then_some(output)
    })
    .await;
    eprintln!("{output}");
}

/// Sends a four-letter word to ZooKeeper node `n` (1-3) and returns its answer ("" when it does not answer).
pub fn zookeeper_four_letters(n: u16, word: &str) -> String {
    let address = format!("127.0.0.1:{}", 52180 + n);
    let Ok(mut stream) = TcpStream::connect_timeout(
        &address.parse().expect("an address"),
        Duration::from_secs(2),
    ) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut answer = String::new();
    if stream.write_all(word.as_bytes()).is_ok() {
        let _ = stream.read_to_string(&mut answer);
    }
    answer
}

/// `leader` or `follower` while ZooKeeper node `n` serves.
pub fn zookeeper_mode(n: u16) -> Option<String> {
    zookeeper_four_letters(n, "srvr")
        .lines()
        .find_map(|line| line.strip_prefix("Mode: ").map(str::to_owned))
}

/// Client connections ZooKeeper node `n` holds (`cons`: one line each).
pub fn zookeeper_connections(n: u16) -> usize {
    zookeeper_four_letters(n, "cons")
        .lines()
        .filter(|line| line.trim_start().starts_with('/'))
        .count()
}

pub fn zookeeper_pidfile(n: u16) -> PathBuf {
    root().join(format!(".run/ha/zk/{n}/zookeeper.pid"))
}

/// The Patroni member (1-3) in `role` (`leader`, `sync_standby`, `replica`) and running or streaming, from the
/// first node's REST API that answers.
pub async fn patroni_member(http: &reqwest::Client, role: &str) -> Option<u16> {
    for n in 1..=3u16 {
        let url = format!("http://127.0.0.1:{}/cluster", 58007 + n);
        let Ok(answer) = http.get(url).timeout(Duration::from_secs(2)).send().await else {
            continue;
        };
        let Ok(cluster) = answer.json::<serde_json::Value>().await else {
            continue;
        };
        let members = cluster["members"].as_array().cloned().unwrap_or_default();
        return members.iter().find_map(|member| {
            let serving = member["state"] == "running" || member["state"] == "streaming";
            (member["role"] == role && serving)
                .then(|| member["name"].as_str()?.strip_prefix("pg")?.parse().ok())
                .flatten()
        });
    }
    None
}

/// The Patroni member that holds the leader key (1-3).
pub async fn patroni_leader(http: &reqwest::Client) -> Option<u16> {
    patroni_member(http, "leader").await
}

/// Asks Patroni for a planned switchover from `leader` to `candidate` (its REST API, as `patronictl switchover`).
pub async fn patroni_switchover(http: &reqwest::Client, leader: u16, candidate: u16) {
    let answer = http
        .post(format!("http://127.0.0.1:{}/switchover", 58007 + leader))
        .json(&serde_json::json!({ "leader": format!("pg{leader}"), "candidate": format!("pg{candidate}") }))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("Patroni answers");
    let status = answer.status();
    let body = answer.text().await.unwrap_or_default();
    assert!(status.is_success(), "switchover refused: {status} {body}");
}

/// The pid files of node `n`: its Patroni's and its PostgreSQL's (postmaster.pid's first line).
pub fn patroni_pidfiles(n: u16) -> [PathBuf; 2] {
    let dir = root().join(format!(".run/ha/pg/{n}"));
    [dir.join("patroni.pid"), dir.join("data/postmaster.pid")]
}
