//! The real `locator serve` binary as a child process, for tests that kill it, restart it, or
//! talk to it at the socket level. Its log is drained in the background (a full pipe would
//! stall the server) and kept for assertions and failure messages.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use super::cli::locator;

pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// host:port, for raw sockets.
    pub addr: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `locator serve` in `dir` on a free port, with the given extra environment, and
    /// returns once it has announced its address. Panics with the log if it exits first.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut cmd: Command = locator(dir);
        cmd.arg("serve")
            .env("LOCATOR_BIND", "127.0.0.1:0")
            .env("LOCATOR_LOG", "info")
            .env("LOCATOR_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("locator serve starts");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let mut log = String::new();
        let addr = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.wait();
                panic!("locator serve exited before listening:\n{log}");
            };
            log.push_str(&line);
            log.push('\n');
            if line.contains("child-locator listening")
                && let Some(rest) = line.split("\"addr\":\"").nth(1)
            {
                break rest.split('"').next().expect("addr").to_string();
            }
        };
        let log = Arc::new(Mutex::new(log));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut log = sink.lock().unwrap_or_else(|p| p.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        Server { child, base: format!("http://{addr}"), addr, log }
    }

    /// Waits until `/readyz` answers 200 (the node has loaded its lookup prefilter), up to 30 s;
    /// returns the last status seen.
    pub async fn wait_ready(&self) -> u16 {
        let http = reqwest::Client::new();
        let mut status = 0;
        for _ in 0..300 {
            status = http.get(self.url("/readyz")).send().await.map(|r| r.status().as_u16()).unwrap_or(0);
            if status == 200 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        status
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// SIGKILL: no drain, no flush, no goodbye. What a power cut or the OOM killer does.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the drain; returns the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        self.child.wait().expect("serve exits")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
