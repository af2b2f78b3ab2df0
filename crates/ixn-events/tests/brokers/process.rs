//! Private broker processes of the outage tests: a command started on a free loopback port,
//! killed (SIGKILL, like a crash) and started again with the same state directory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// A free TCP port on 127.0.0.1 (the listener is closed before the broker binds it).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding port 0");
    listener.local_addr().expect("local address").port()
}

/// Where a program is: `env_var` when set, else the first match on `PATH`.
pub fn find_program(env_var: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env_var) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A broker process started by a test, restartable with the same arguments.
#[derive(Debug)]
pub struct BrokerProcess {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    dir: PathBuf,
    /// The port that says "ready" once it accepts connections.
    port: u16,
    child: Option<Child>,
}

impl BrokerProcess {
    pub fn new(name: &str, program: &Path, args: &[String], dir: &Path, port: u16) -> BrokerProcess {
        BrokerProcess {
            name: name.to_owned(),
            program: program.to_owned(),
            args: args.to_vec(),
            envs: Vec::new(),
            dir: dir.to_owned(),
            port,
            child: None,
        }
    }

    pub fn env(mut self, key: &str, value: &str) -> BrokerProcess {
        self.envs.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the process and waits (bounded) until its port accepts connections.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "{} already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.log", self.name)))
            .expect("opening the broker log");
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.program.display()));
        self.child = Some(child);
        let address = self.address();
        let up = super::wait_for(Duration::from_secs(90), || {
            let address = address.clone();
            async move { super::reachable(&address).await.then_some(()) }
        })
        .await;
        if up.is_none() {
            let log =
                std::fs::read_to_string(self.dir.join(format!("{}.log", self.name))).unwrap_or_default();
            panic!("{} did not listen on {address}; its log:\n{log}", self.name);
        }
    }

    /// Kills the process (SIGKILL) and waits until it is gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}
